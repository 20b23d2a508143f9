#!/usr/bin/env bash
# bench.sh — the benchmark of issue 4 (make bench), black-box: it builds the
# real resumeproxy binary, serves generated files from a local origin
# (internal/cmd/benchorigin: Go's http.FileServer, strong ETags, max-age) and
# measures every case through the proxy and directly (origin → client) in the
# same run, alternating the two. It prints a markdown table of ratios to the
# direct figures, with the machine described. It exits 0 whether or not the
# targets are met; it fails only when it cannot measure.
#
# Clients: curl (one process per whole download) for the big transfers, and
# internal/cmd/benchclient (Go, keep-alive) for the 1000 range requests, the
# small GETs on 32 connections and the parallel downloads.
#
# Everything binds to 127.0.0.1; nothing leaves the machine. Sizes and counts
# can be overridden from the environment (IEC suffixes: 512M, 1G):
#   BENCH_SIZE=1G            file of the warm, cold, partial and range cases
#   BENCH_MEM_SIZE=4G        file streamed for the peak-RSS case
#   BENCH_RUNS=3             alternated direct/proxy runs per case (median)
#   BENCH_RANGES=1000        random 1 MiB range requests per run
#   BENCH_SMALL_REQUESTS=20000  10 KB GETs per run, on 32 connections
#   BENCH_PAR=100 BENCH_PAR_SIZE=64M  parallel downloads of the memory case
#   BENCH_DIR=/tmp           where the files and caches go (one disk)
set -uo pipefail

SIZE=$(numfmt --from=iec "${BENCH_SIZE:-1G}")
MEM_SIZE=$(numfmt --from=iec "${BENCH_MEM_SIZE:-4G}")
PAR_SIZE=$(numfmt --from=iec "${BENCH_PAR_SIZE:-64M}")
RUNS=${BENCH_RUNS:-3}
RANGES=${BENCH_RANGES:-1000}
RANGE_SIZE=$((1 << 20))
SMALL_REQUESTS=${BENCH_SMALL_REQUESTS:-20000}
SMALL_SIZE=10000
SMALL_CONNS=32
PAR=${BENCH_PAR:-100}

cd "$(dirname "$0")/.." || exit 1
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/resumeproxy-bench.XXXXXX") || exit 1
BIN=$TMP/bin DATA=$TMP/data
ORIGIN_PID="" PROXY_PID="" ORIGIN="" PROXY=""
ROWS=() DIRECT_TIMES=() VIA_TIMES=()
SECONDS=0

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# cleanup stops the processes this script started, by pid, and removes TMP.
cleanup() {
	for pid in $PROXY_PID $ORIGIN_PID; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install_deps() {
	command -v go >/dev/null || die "go is required (Go 1.26, see go.mod)"
	command -v curl >/dev/null && return
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq curl ||
		die "cannot install curl"
}

build() {
	go build -o "$BIN/resumeproxy" . &&
		go build -o "$BIN/benchorigin" ./internal/cmd/benchorigin &&
		go build -o "$BIN/benchclient" ./internal/cmd/benchclient || die "build failed"
}

# make_files writes the served files. Content is random (nothing compresses);
# the larger file repeats the first one, which no layer here deduplicates.
make_files() {
	mkdir -p "$DATA/nostore" || die "mkdir"
	head -c "$SIZE" /dev/urandom >"$DATA/big.bin" || die "generating big.bin"
	local n=$(((MEM_SIZE + SIZE - 1) / SIZE))
	for ((i = 0; i < n; i++)); do cat "$DATA/big.bin"; done | head -c "$MEM_SIZE" >"$DATA/mem.bin"
	if [ "$PAR_SIZE" -le "$SIZE" ]; then
		head -c "$PAR_SIZE" "$DATA/big.bin" >"$DATA/par.bin"
	else
		head -c "$PAR_SIZE" /dev/urandom >"$DATA/par.bin"
	fi
	head -c "$SMALL_SIZE" /dev/urandom >"$DATA/small.bin"
	[ "$(stat -c %s "$DATA/mem.bin")" -eq "$MEM_SIZE" ] || die "generating mem.bin"
	sync # the measurements should not pay for writing back these pages
}

# wait_for FILE PATTERN: waits up to 10 s for PATTERN in FILE.
wait_for() {
	for ((i = 0; i < 100; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

start_origin() {
	"$BIN/benchorigin" -dir "$DATA" -addr-file "$TMP/origin.addr" 2>"$TMP/origin.log" &
	ORIGIN_PID=$!
	wait_for "$TMP/origin.addr" 127.0.0.1 || die "origin did not start: $(cat "$TMP/origin.log")"
	ORIGIN=http://$(cat "$TMP/origin.addr")
}

# start_proxy DIR: a fresh proxy process on a free port with its cache in DIR.
start_proxy() {
	: >"$TMP/proxy.log"
	"$BIN/resumeproxy" --listen 127.0.0.1:0 --cache-dir "$1" 2>>"$TMP/proxy.log" &
	PROXY_PID=$!
	wait_for "$TMP/proxy.log" 'listen=' || die "proxy did not start: $(cat "$TMP/proxy.log")"
	PROXY=$(sed -n 's/.*listen=\([0-9.:]*\).*/\1/p' "$TMP/proxy.log" | head -1)
}

stop_proxy() {
	kill -TERM "$PROXY_PID" && wait "$PROXY_PID"
	PROXY_PID=""
}

# peak_rss_mib: the proxy's peak resident set so far (VmHWM), in MiB.
peak_rss_mib() {
	awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$PROXY_PID/status"
}

# fetch direct|proxy URL XCACHE SIZE [CURL ARGS...]: downloads URL with curl
# and prints its wall time in seconds. Fails when the body is not SIZE bytes
# or, through the proxy, X-Cache is not XCACHE.
fetch() {
	local via=$1 url=$2 want=$3 size=$4
	shift 4
	local args=(-s -o /dev/null -D "$TMP/headers" -w '%{time_total} %{size_download} %{http_code}')
	if [ "$via" = proxy ]; then args+=(-x "http://$PROXY"); else args+=(--noproxy '*'); fi
	local out t n code xc
	out=$(curl "${args[@]}" "$@" "$url") || { note "curl $via $url failed"; return 1; }
	read -r t n code <<<"$out"
	[ "$n" = "$size" ] || { note "$via $url: $n bytes (status $code), want $size"; return 1; }
	xc=$(tr -d '\r' <"$TMP/headers" | awk 'tolower($1) == "x-cache:" { print $2 }')
	[ "$via" = direct ] || [ "$xc" = "$want" ] || { note "$via $url: X-Cache $xc, want $want"; return 1; }
	echo "$t"
}

# client ARGS...: runs benchclient and prints its key=value line.
client() {
	"$BIN/benchclient" "$@" || { note "benchclient $* failed"; return 1; }
}

# field KEY LINE: the value of KEY in a benchclient line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
mibs() { awk "BEGIN { printf \"%.0f\", $1 / 1048576 / $2 }"; } # BYTES SECONDS → MiB/s
secs() { awk "BEGIN { printf \"%.3f\", $1 }"; }
# human BYTES: 1 GiB, 64 MiB, 1.5 GiB
human() {
	awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u); i = 1
		while (b >= 1024 && i < 5) { b /= 1024; i++ }
		printf "%s %s", (b == int(b) ? b : sprintf("%.1f", b)), u[i] }'
}
met() { awk "BEGIN { print ($1) ? \"yes\" : \"**no**\" }"; }

# row CASE DIRECT PROXY RATIO TARGET MET
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }
error_row() { row "$1" "–" "error (see stderr)" "–" "$2" "**no**"; }

# throughput_row CASE TARGET DIRECT_SECONDS... -- PROXY_SECONDS...: the row
# of a whole-file case; ratio = direct time / proxy time (throughput ratio).
throughput_row() {
	local name=$1 target=$2 bytes=$3 d p
	d=$(median $4) p=$(median $5)
	note "$name: seconds direct [$4], proxy [$5]"
	row "$name" "$(mibs "$bytes" "$d") MiB/s ($(secs "$d") s)" "$(mibs "$bytes" "$p") MiB/s ($(secs "$p") s)" \
		"$(calc "$d / $p")" "≥ $target" "$(met "$d / $p >= $target")"
}

# warm_runs VIA: big.bin once through VIA (the MISS that stores it), then
# RUNS times alternately directly and through VIA (a HIT each); sets
# DIRECT_TIMES and VIA_TIMES to the seconds. Shared with the comparison rows
# so that every cache is measured the same way.
warm_runs() {
	local via=$1 t
	DIRECT_TIMES=() VIA_TIMES=()
	fetch "$via" "$ORIGIN/big.bin" MISS "$SIZE" >/dev/null || return 1 # populates
	for ((r = 0; r < RUNS; r++)); do
		t=$(fetch direct "$ORIGIN/big.bin" "" "$SIZE") || return 1
		DIRECT_TIMES+=("$t")
		t=$(fetch "$via" "$ORIGIN/big.bin" HIT "$SIZE") || return 1
		VIA_TIMES+=("$t")
	done
}

# cold_runs VIA KEY: RUNS times alternately big.bin?KEY=N directly and
# through VIA, N new each run so that VIA has never seen it (a MISS); sets
# DIRECT_TIMES and VIA_TIMES like warm_runs.
cold_runs() {
	local via=$1 key=$2 t
	DIRECT_TIMES=() VIA_TIMES=()
	for ((r = 0; r < RUNS; r++)); do
		t=$(fetch direct "$ORIGIN/big.bin?$key=$r" "" "$SIZE") || return 1
		DIRECT_TIMES+=("$t")
		t=$(fetch "$via" "$ORIGIN/big.bin?$key=$r" MISS "$SIZE") || return 1
		VIA_TIMES+=("$t")
	done
}

case_warm() {
	warm_runs proxy || return 1
	throughput_row "warm hit ($(human "$SIZE"), complete entry)" 0.90 "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
}

case_cold() {
	cold_runs proxy run || return 1
	throughput_row "cold miss ($(human "$SIZE"), written to the cache)" 0.80 "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
}

# case_partial: a range request caches the first half (untimed), then one
# full GET gets that half from the cache and the rest from upstream.
case_partial() {
	local d=() p=() t half=$((SIZE / 2))
	for ((r = 0; r < RUNS; r++)); do
		t=$(fetch direct "$ORIGIN/big.bin?part=$r" "" "$SIZE") || return 1
		d+=("$t")
		fetch proxy "$ORIGIN/big.bin?part=$r" MISS "$half" -r "0-$((half - 1))" >/dev/null || return 1
		t=$(fetch proxy "$ORIGIN/big.bin?part=$r" PARTIAL "$SIZE") || return 1
		p+=("$t")
	done
	throughput_row "partial (first 50% cached, one response)" 0.80 "$SIZE" "${d[*]}" "${p[*]}"
}

# case_ranges: RANGES random 1 MiB ranges of the entry case_warm completed,
# one keep-alive connection, same offsets direct and through the proxy.
case_ranges() {
	local d=() p=() out common=(-url "$ORIGIN/big.bin" -requests "$RANGES" -conns 1
		-range-size "$RANGE_SIZE" -file-size "$SIZE" -seed 4)
	for ((r = 0; r < RUNS; r++)); do
		out=$(client "${common[@]}") || return 1
		d+=("$(field seconds "$out")")
		out=$(client "${common[@]}" -proxy "http://$PROXY" -expect-xcache HIT) || return 1
		p+=("$(field seconds "$out")")
	done
	throughput_row "range hit ($RANGES × 1 MiB random ranges, 1 conn)" 0.80 $((RANGES * RANGE_SIZE)) "${d[*]}" "${p[*]}"
}

# case_small: SMALL_REQUESTS GETs of a 10 KB no-store file, each a distinct
# URL (?i=N), on 32 connections: the proxy must relay, not store.
case_small() {
	local dl=() pl=() dt=() pt=() out common=(-url "$ORIGIN/nostore/small.bin?i={i}"
		-requests "$SMALL_REQUESTS" -conns "$SMALL_CONNS")
	for ((r = 0; r < RUNS; r++)); do
		out=$(client "${common[@]}") || return 1
		dl+=("$(field p50_ms "$out")") dt+=("$(field req_per_s "$out")")
		out=$(client "${common[@]}" -proxy "http://$PROXY" -expect-xcache MISS) || return 1
		pl+=("$(field p50_ms "$out")") pt+=("$(field req_per_s "$out")")
	done
	local d p
	note "small: p50 ms direct [${dl[*]}], proxy [${pl[*]}]; req/s direct [${dt[*]}], proxy [${pt[*]}]"
	d=$(median "${dl[@]}") p=$(median "${pl[@]}")
	row "small pass-through p50 latency (10 KB no-store, $SMALL_CONNS conns)" "$d ms" "$p ms" \
		"$(calc "$p / $d")" "≤ 1.30 (proxy/direct)" "$(met "$p / $d <= 1.3")"
	d=$(median "${dt[@]}") p=$(median "${pt[@]}")
	row "small pass-through throughput" "$d req/s" "$p req/s" \
		"$(calc "$p / $d")" "≥ 0.70" "$(met "$p / $d >= 0.7")"
}

# stream_peak BYTES FILE: a fresh proxy on an empty cache streams FILE cold,
# then warm; sets PEAK to its peak RSS in MiB (empty on failure).
stream_peak() {
	local dir=$TMP/cache-mem
	PEAK=""
	start_proxy "$dir"
	fetch proxy "$ORIGIN/$2?mem" MISS "$1" >/dev/null &&
		fetch proxy "$ORIGIN/$2?mem" HIT "$1" >/dev/null && PEAK=$(peak_rss_mib)
	stop_proxy
	rm -rf "$dir"
	[ -n "$PEAK" ]
}

case_memory() {
	local small big par="" dir=$TMP/cache-par
	stream_peak "$SIZE" big.bin || return 1
	small=$PEAK
	stream_peak "$MEM_SIZE" mem.bin || return 1
	big=$PEAK
	row "memory: peak RSS streaming $(human "$MEM_SIZE") (cold, then warm)" "–" "$big MiB" "–" \
		"≤ 64 MiB" "$(met "$big <= 64")"
	row "memory: flat as size grows ($(human "$SIZE") → $(human "$MEM_SIZE"))" "–" \
		"$small → $big MiB" "$(calc "$big / $small")" "≤ 1.25 (our reading of flat)" "$(met "$big / $small <= 1.25")"
	start_proxy "$dir"
	client -url "$ORIGIN/par.bin?id={i}" -requests "$PAR" -conns "$PAR" -proxy "http://$PROXY" \
		-expect-xcache MISS >/dev/null && par=$(peak_rss_mib)
	stop_proxy
	rm -rf "$dir"
	[ -n "$par" ] || return 1
	row "memory: peak RSS, $PAR parallel $(human "$PAR_SIZE") cold downloads (distinct URLs)" "–" \
		"$par MiB" "–" "≤ 256 MiB" "$(met "$par <= 256")"
}

# run_case NAME TARGET FUNC: runs FUNC; a failure becomes an error row.
run_case() {
	note "case: $1"
	"$3" || error_row "$1" "$2"
}

describe_machine() {
	local disk
	disk=$(dd if=/dev/zero of="$TMP/ddtest" bs=1M count=256 conv=fdatasync 2>&1 | awk -F', ' 'END { print $NF }')
	rm -f "$TMP/ddtest"
	echo "## resumeproxy benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "- CPU: $(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "- memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- kernel: $(uname -sr)"
	echo "- $(go version)"
	echo "- $(curl --version | head -1 | cut -d' ' -f1-2)"
	echo "- disk of $TMP: $(df -T "$TMP" | awk 'NR == 2 { print $2 " on " $1 }'), sequential write with fdatasync: $disk"
	echo "- files: random bytes from /dev/urandom ($(human "$SIZE")); the $(human "$MEM_SIZE") file repeats it; all in the page cache"
	echo "- origin: Go http.FileServer (sendfile), strong ETag, max-age=3600; direct = origin → client without the proxy"
	echo "- figures: median of $RUNS alternated direct/proxy runs; whole files with curl, ranges and small GETs with benchclient (keep-alive)"
}

main() {
	install_deps
	build
	make_files
	local header
	header=$(describe_machine)
	start_origin
	start_proxy "$TMP/cache"
	run_case "warm hit" "≥ 0.90" case_warm
	run_case "range hit" "≥ 0.80" case_ranges
	run_case "cold miss" "≥ 0.80" case_cold
	run_case "partial" "≥ 0.80" case_partial
	run_case "small pass-through" "p50 ≤ 1.30×, throughput ≥ 0.70×" case_small
	stop_proxy
	rm -rf "$TMP/cache"
	run_case "memory" "≤ 64 MiB, ≤ 256 MiB, flat" case_memory
	echo "$header"
	echo "- runtime: ${SECONDS} s"
	echo
	echo "| case | direct | proxy | ratio | target | met? |"
	echo "| --- | --- | --- | --- | --- | --- |"
	printf '%s\n' "${ROWS[@]}"
}

main
exit 0
