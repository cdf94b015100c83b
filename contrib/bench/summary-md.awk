# summary-md.awk - summary.csv (vp-bench --summary) -> a markdown table.
BEGIN { FS = "," }
NR == 1 {
    print "| mix | conns | ours ops/s | ref ops/s | min ops/s | ours/ref | ours/min | p99 µs ours / ref / min | CPU µs/op ours / ref / min | CPU ours/ref | peak RSS MiB ours / ref | errors |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    next
}
{
    printf "| %s | %s | %s | %s | %s | %.2f | %.2f | %s / %s / %s | %s / %s / %s | %.2f | %.1f / %.1f | %s |\n", \
        $1, $2, $4, $10, $16, $22, $23, $6, $12, $18, $8, $14, $20, $24, $9 / 1024, $15 / 1024, $25
}
