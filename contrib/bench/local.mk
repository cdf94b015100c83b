# contrib/bench
