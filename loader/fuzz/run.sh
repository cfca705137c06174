#!/bin/sh
# Fuzzes one target for SECONDS (default 900) from its committed corpus and
# the seeds (python3 seeds.py), then minimizes the corpus in place to the
# fewest inputs that keep every coverage edge (-use_counters=0: hit counts
# are not kept, which keeps the committed corpus small). Run from
# loader/fuzz; the log, with libFuzzer's final stats, goes to logs/TARGET.log.
#   sh run.sh meta_conf 900
set -eu
target=$1
seconds=${2:-900}
mkdir -p "corpus/$target" logs
[ -d "seeds/$target" ] || python3 -W ignore seeds.py
nice cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=131072 \
    -print_final_stats=1 2>&1 | tee "logs/$target.log" | grep -E "INITED|DONE|stat::|SUMMARY|panicked"
nice cargo +nightly fuzz cmin "$target" "corpus/$target" -- -use_counters=0 -rss_limit_mb=2048 -timeout=10 -max_len=131072 \
    > "logs/$target.cmin.log" 2>&1
echo "corpus/$target: $(ls "corpus/$target" | wc -l) files, $(du -sb "corpus/$target" | cut -f1) bytes"
