# plot.gp - ops/s and p99 latency against connections, one line per server,
# one column per mix.  gnuplot -e "summary='S.csv'; output='O.png'" plot.gp
set datafile separator ","
set terminal pngcairo size 1600,800 font ",10"
set output output
set key top left
set logscale x 2
set grid
set xlabel "concurrent connections"
mixes = "lstat open create mixed"
# summary.csv columns: mix,clients,pipeline, then per server (ours, ref, min)
# ops_s,p50,p99,p999,cpu,rss  -> ours 4..9, ref 10..15, min 16..21
set multiplot layout 2,4 title "virtfs-proxyd (ours) vs virtfs-proxy-helper (ref) vs minimal epoll server (min)"
do for [m in mixes] {
    set title m." - throughput"
    set ylabel "ops/s"
    set yrange [0:*]
    set logscale x 2
    plot summary using ((strcol(1) eq m) ? $2 : 1/0):($4 > 0 ? $4 : 1/0) with linespoints lw 2 title "ours", \
         summary using ((strcol(1) eq m) ? $2 : 1/0):($10 > 0 ? $10 : 1/0) with linespoints lw 2 title "ref", \
         summary using ((strcol(1) eq m) ? $2 : 1/0):($16 > 0 ? $16 : 1/0) with linespoints lw 2 dt 2 title "min"
}
do for [m in mixes] {
    set title m." - p99 latency"
    set ylabel "p99 (µs)"
    set logscale y 10
    set yrange [*:*]
    plot summary using ((strcol(1) eq m) ? $2 : 1/0):($6 > 0 ? $6 : 1/0) with linespoints lw 2 title "ours", \
         summary using ((strcol(1) eq m) ? $2 : 1/0):($12 > 0 ? $12 : 1/0) with linespoints lw 2 title "ref", \
         summary using ((strcol(1) eq m) ? $2 : 1/0):($18 > 0 ? $18 : 1/0) with linespoints lw 2 dt 2 title "min"
    unset logscale y
}
unset multiplot
