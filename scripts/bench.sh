#!/usr/bin/env bash
# bench.sh — the benchmark of issue 4 (make bench), black-box: it builds the
# real resumeproxy binary, serves generated files from a local origin
# (internal/cmd/benchorigin: Go's http.FileServer, strong ETags, max-age) and
# measures every case through the proxy and directly (origin → client) in the
# same run, alternating the two. It prints a markdown table of ratios to the
# direct figures, with the machine described. It exits 0 whether or not the
# targets are met; it fails only when it cannot measure.
#
# HTTPS: the origin also serves the files behind TLS (HTTP/1.1, a CA it
# makes at start), and two rows time the warm and cold downloads of the same
# file over HTTPS through a proxy that intercepts them (--mitm, with a CA
# from "resumeproxy ca init" in the temp dir; it trusts the origin's CA
# through SSL_CERT_FILE), against direct HTTPS downloads, in the same way as
# the plain warm and cold rows.
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
#   BENCH_COMPARE=0          skip the comparison with Squid and nginx below
#
# Comparison: after resumeproxy's rows, a separate block of the table times
# the same warm and cold downloads (warm_runs, cold_runs: same URLs, same
# alternation with direct, same median) through Squid, a forward proxy
# (curl -x), and through nginx's proxy_cache, which is a reverse proxy: curl
# asks it for the origin's path and query. Both come from Debian's packages,
# installed with apt-get when missing (where an init system runs, Debian also
# starts their system services; this script neither uses nor stops them); a
# package that cannot be installed turns its rows into "not installed". Each
# runs on a free 127.0.0.1 port with its config, cache, logs and pid file in
# the temp dir, as the current user (under root, Squid, which refuses to run
# as root, runs as Debian's "proxy" user), and is stopped by pid. Their
# settings are the defaults except what the comparison needs: a cache on the
# same disk big enough for the files, hits from disk (Squid's memory cache
# kept small), loopback only. Warm rows check X-Cache: HIT, cold rows MISS.
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
COMPARE=${BENCH_COMPARE:-1}

cd "$(dirname "$0")/.." || exit 1
PATH=$PATH:/usr/sbin:/sbin # where Debian puts squid and nginx; a user's PATH may lack it
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/resumeproxy-bench.XXXXXX") || exit 1
BIN=$TMP/bin DATA=$TMP/data
ORIGIN_PID="" PROXY_PID="" ORIGIN="" ORIGIN_TLS="" PROXY=""
# ORIGIN_CA: the origin's CA (it writes it at start); MITM_DIR: the
# interception CA, which curl trusts through the proxy.
ORIGIN_CA=$TMP/origin-ca.pem MITM_DIR=$TMP/mitm-ca
SQUID_PID="" NGINX_PID="" SQUID="" NGINX=""
# Squid names its shared memory segments (/dev/shm) after its service name:
# one of our own, so that no other Squid on the machine shares them.
SQUID_NAME=rpbench$$
ROWS=() DIRECT_TIMES=() VIA_TIMES=()
DROP_FAILED=""
SECONDS=0

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# cleanup stops the processes this script started, by pid, and removes TMP.
cleanup() {
	for pid in $PROXY_PID $SQUID_PID $NGINX_PID $ORIGIN_PID; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	rm -f "/dev/shm/$SQUID_NAME"-* # left behind when Squid does not exit cleanly
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# install_deps installs what is missing with apt-get: curl, which the run
# needs, and squid and nginx for the comparison, whose rows say "not
# installed" when they cannot be (one package at a time, so that one failure
# does not cost the others).
install_deps() {
	command -v go >/dev/null || die "go is required (Go 1.26, see go.mod)"
	local missing=() sudo="" pkg
	for pkg in curl squid nginx; do
		[ "$pkg" = curl ] || [ "$COMPARE" != 0 ] || continue
		command -v "$pkg" >/dev/null || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	note "installing ${missing[*]} with apt-get (log: $TMP/apt.log)"
	$sudo apt-get update -qq >>"$TMP/apt.log" 2>&1 ||
		note "apt-get update failed, trying the package lists there are: $(tail -3 "$TMP/apt.log")"
	for pkg in "${missing[@]}"; do
		# env: sudo would drop a variable set in front of it
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >>"$TMP/apt.log" 2>&1 ||
			note "cannot install $pkg: $(tail -3 "$TMP/apt.log")"
	done
	command -v curl >/dev/null || die "cannot install curl"
	for pkg in squid nginx; do
		[ "$COMPARE" = 0 ] || command -v "$pkg" >/dev/null ||
			note "$pkg is not installed: its comparison rows will say so"
	done
}

build() {
	go build -o "$BIN/resumeproxy" . || die "build failed"
	go build -o "$BIN/benchorigin" ./internal/cmd/benchorigin || die "build failed"
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

# start_origin: the origin on two free ports, plain HTTP (ORIGIN) and HTTPS
# (ORIGIN_TLS, its CA in ORIGIN_CA, written before the address).
start_origin() {
	local f
	"$BIN/benchorigin" -dir "$DATA" -addr-file "$TMP/origin.addr" -tls-addr 127.0.0.1:0 \
		-tls-addr-file "$TMP/origin-tls.addr" -ca-file "$ORIGIN_CA" 2>"$TMP/origin.log" &
	ORIGIN_PID=$!
	for f in origin.addr origin-tls.addr; do
		wait_for "$TMP/$f" 127.0.0.1 || die "origin did not start: $(cat "$TMP/origin.log")"
	done
	ORIGIN=http://$(cat "$TMP/origin.addr")
	ORIGIN_TLS=https://$(cat "$TMP/origin-tls.addr")
}

# start_proxy DIR [ARGS...]: a fresh proxy process on a free port with its
# cache in DIR and ARGS added to its command line. Its upstream TLS trusts
# the origin's CA (SSL_CERT_FILE, read by Go's crypto/x509).
start_proxy() {
	local dir=$1
	shift
	: >"$TMP/proxy.log"
	SSL_CERT_FILE=$ORIGIN_CA "$BIN/resumeproxy" --listen 127.0.0.1:0 --cache-dir "$dir" "$@" 2>>"$TMP/proxy.log" &
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

# fetch VIA URL XCACHE SIZE [CURL ARGS...]: downloads URL (an origin URL)
# with curl and prints its wall time in seconds. VIA is direct, proxy
# (resumeproxy), squid (a forward proxy too) or nginx (a reverse proxy: the
# same path and query, asked of nginx). Fails when the body is not SIZE bytes
# or, through a cache, the first word of X-Cache is not XCACHE (Squid sends
# "HIT from host", nginx its $upstream_cache_status). An https URL is
# checked against the origin's CA directly and the interception CA through
# the proxy.
fetch() {
	local via=$1 url=$2 want=$3 size=$4
	shift 4
	local args=(-s -o /dev/null -D "$TMP/headers" -w '%{time_total} %{size_download} %{http_code}')
	case $via in
	proxy) args+=(-x "http://$PROXY") ;;
	squid) args+=(-x "http://$SQUID") ;;
	nginx) args+=(--noproxy '*') url=http://$NGINX${url#"$ORIGIN"} ;;
	*) args+=(--noproxy '*') ;;
	esac
	if [[ $url == https://* ]]; then
		if [ "$via" = direct ]; then args+=(--cacert "$ORIGIN_CA"); else args+=(--cacert "$MITM_DIR/ca.pem"); fi
	fi
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
# error_row CASE TARGET: "–" for a case without a target.
error_row() {
	local met="**no**"
	[ "$2" != "–" ] || met="–"
	row "$1" "–" "error (see stderr)" "–" "$2" "$met"
}

# throughput_row CASE TARGET BYTES "DIRECT_SECONDS..." "PROXY_SECONDS...":
# the row of a whole-file case; ratio = direct time / proxy time (throughput
# ratio). TARGET "comparison" makes a row of another cache, with no target;
# "–" a row of resumeproxy with no target.
throughput_row() {
	local name=$1 target=$2 bytes=$3 d p cells
	# shellcheck disable=SC2086 # $4 and $5 are lists of numbers, split on purpose
	d=$(median $4) p=$(median $5)
	note "$name: seconds direct [$4], proxy [$5]"
	cells=("$(mibs "$bytes" "$d") MiB/s ($(secs "$d") s)" "$(mibs "$bytes" "$p") MiB/s ($(secs "$p") s)"
		"$(calc "$d / $p")")
	if [ "$target" = comparison ] || [ "$target" = "–" ]; then
		row "$name" "${cells[@]}" "$target" "–"
	else
		row "$name" "${cells[@]}" "≥ $target" "$(met "$d / $p >= $target")"
	fi
}

# warm_runs VIA [BASE]: big.bin once through VIA (the MISS that stores it),
# then RUNS times alternately directly and through VIA (a HIT each), from
# the origin at BASE (ORIGIN, or ORIGIN_TLS); sets DIRECT_TIMES and
# VIA_TIMES to the seconds. Shared with the HTTPS and comparison rows so
# that every case is measured the same way.
warm_runs() {
	local via=$1 url=${2:-$ORIGIN}/big.bin t
	DIRECT_TIMES=() VIA_TIMES=()
	settle
	fetch "$via" "$url" MISS "$SIZE" >/dev/null || return 1 # populates
	for ((r = 0; r < RUNS; r++)); do
		settle
		t=$(fetch direct "$url" "" "$SIZE") || return 1
		DIRECT_TIMES+=("$t")
		settle
		t=$(fetch "$via" "$url" HIT "$SIZE") || return 1
		VIA_TIMES+=("$t")
	done
}

# settle [drop], untimed, before every timed whole-file run, direct or not:
# - waits until the kernel has written back every dirty page. A cold run
#   writes 1 GiB in about a second to a disk that takes three to write it
#   back; back to back, the next run would be throttled to the disk's rate
#   (balance_dirty_pages) and measure the previous run's backlog;
# - with drop (cold runs), empties the page cache. Each cold run leaves
#   1 GiB more of it, and once it grew into memory this VM had not used
#   yet, writing new pages ran at ~300 MB/s: the fourth cold run in a row
#   took 2.4-3.6 s instead of 0.9-1.0 s, for every cache, whatever it syncs.
#   Dropping the (clean) cache before each run made them repeatable;
# - reads the origin's file, so it is in the page cache as the machine
#   description says: a proactive reclaimer (this machine runs DAMON's
#   pageout) may evict file pages it sees as idle for a minute, and a run
#   would then read from disk (seen: 210 MB/s of reads in vmstat).
settle() {
	sync
	[ "${1:-}" = drop ] && drop_caches
	cat "$DATA/big.bin" >/dev/null
}

# drop_caches drops the clean page cache (root, or sudo without a
# password); where neither works the runs go on as the machine is, and the
# description says so.
drop_caches() {
	echo 1 2>/dev/null >/proc/sys/vm/drop_caches && return
	sudo -n sh -c 'echo 1 >/proc/sys/vm/drop_caches' 2>/dev/null && return
	DROP_FAILED=1
}

# cold_runs VIA KEY [BASE]: RUNS times alternately big.bin?KEY=N directly
# and through VIA, from the origin at BASE like warm_runs, N new each run so
# that VIA has never seen it (a MISS); sets DIRECT_TIMES and VIA_TIMES like
# warm_runs.
cold_runs() {
	local via=$1 url="${3:-$ORIGIN}/big.bin?$2" t
	DIRECT_TIMES=() VIA_TIMES=()
	for ((r = 0; r < RUNS; r++)); do
		settle drop
		t=$(fetch direct "$url=$r" "" "$SIZE") || return 1
		DIRECT_TIMES+=("$t")
		settle drop
		t=$(fetch "$via" "$url=$r" MISS "$SIZE") || return 1
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

# start_mitm_proxy: a proxy that intercepts CONNECTs to the origin's HTTPS
# port, with a new CA in MITM_DIR and its cache in TMP/cache-tls.
start_mitm_proxy() {
	rm -rf "$MITM_DIR"
	"$BIN/resumeproxy" ca init --dir "$MITM_DIR" >"$TMP/ca-init.log" 2>&1 ||
		{ note "ca init failed: $(cat "$TMP/ca-init.log")"; return 1; }
	start_proxy "$TMP/cache-tls" --mitm --ca-cert "$MITM_DIR/ca.pem" --ca-key "$MITM_DIR/ca-key.pem" \
		--connect-ports "${ORIGIN_TLS##*:}"
}

# case_tls_warm, case_tls_cold: the warm and cold cases over HTTPS, the
# proxy intercepting: it decrypts, serves from or fills the same cache as
# plain HTTP, and encrypts again (no sendfile through TLS).
case_tls_warm() {
	warm_runs proxy "$ORIGIN_TLS" || return 1
	throughput_row "warm hit $(human "$SIZE") through HTTPS interception" 0.80 "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
}

case_tls_cold() {
	cold_runs proxy tls "$ORIGIN_TLS" || return 1
	throughput_row "cold miss $(human "$SIZE") through HTTPS interception" "–" "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
}

# tls_version: the TLS version and cipher curl negotiates with the origin.
tls_version() {
	curl -sv --noproxy '*' --cacert "$ORIGIN_CA" -o /dev/null "$ORIGIN_TLS/small.bin" 2>&1 |
		sed -n 's/^\* SSL connection using //p' | head -1 | grep . || echo "unknown"
}

# case_partial: a range request caches the first half (untimed), then one
# full GET gets that half from the cache and the rest from upstream.
case_partial() {
	local d=() p=() t half=$((SIZE / 2))
	for ((r = 0; r < RUNS; r++)); do
		settle drop
		t=$(fetch direct "$ORIGIN/big.bin?part=$r" "" "$SIZE") || return 1
		d+=("$t")
		settle drop
		fetch proxy "$ORIGIN/big.bin?part=$r" MISS "$half" -r "0-$((half - 1))" >/dev/null || return 1
		settle # not drop: the cached half stays in memory, as a hit's would
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
	# Flat: the peak does not follow the size. Between 1 and 4 GiB it rises
	# by the Go heap's first growth to its GC goal (checkpoint garbage
	# accumulates until the first collection, at about 2 × the ~12 MB live
	# heap); past that it stays (8 GiB, measured by hand: 34 MiB). So the
	# bound is on the rise, not a ratio of two small figures.
	row "memory: flat as size grows ($(human "$SIZE") → $(human "$MEM_SIZE"))" "–" \
		"$small → $big MiB" "+$(calc "$big - $small") MiB" "≤ +16 MiB (one GC cycle of heap)" "$(met "$big - $small <= 16")"
	start_proxy "$dir"
	client -url "$ORIGIN/par.bin?id={i}" -requests "$PAR" -conns "$PAR" -proxy "http://$PROXY" \
		-expect-xcache MISS >/dev/null && par=$(peak_rss_mib)
	stop_proxy
	rm -rf "$dir"
	[ -n "$par" ] || return 1
	row "memory: peak RSS, $PAR parallel $(human "$PAR_SIZE") cold downloads (distinct URLs)" "–" \
		"$par MiB" "–" "≤ 256 MiB" "$(met "$par <= 256")"
}

# free_port: prints a loopback TCP port nobody listens on, taken at random
# from 20000-29999, below the ports Linux gives outgoing connections.
free_port() {
	local i p
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 10000))
		(: >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

# wait_port PORT PID: waits up to 30 s for 127.0.0.1:PORT to accept
# connections; fails at once when process PID has exited.
wait_port() {
	local i
	for ((i = 0; i < 300; i++)); do
		kill -0 "$2" 2>/dev/null || return 1
		(: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# cache_mib: the size to give another cache, in MiB: twice what the warm and
# cold runs store, so that it never evicts during them.
cache_mib() { echo $((2 * (RUNS + 1) * SIZE / 1048576 + 1)); }

# squid_conf DIR PORT: Squid's config: a forward proxy on 127.0.0.1:PORT for
# loopback clients to loopback servers only, its cache, logs and pid file in
# DIR; everything else is left at Squid's defaults.
squid_conf() {
	local dir=$1 port=$2
	cat <<-EOF
		# written by resumeproxy's scripts/bench.sh for its comparison rows
		http_port 127.0.0.1:$port
		visible_hostname localhost
		pid_filename $dir/squid.pid
		cache_log $dir/cache.log
		access_log stdio:$dir/access.log
		cache_store_log none
		netdb_filename none
		coredump_dir $dir
		pinger_enable off
		# no lookup is needed (URLs name 127.0.0.1); should one happen, it stays here
		dns_nameservers 127.0.0.1
		shutdown_lifetime 1 seconds
		# before cache_dir, which takes its own limit from it
		maximum_object_size $((SIZE / 1048576 + 1)) MB
		# ufs, the type of Squid's documented example, on the disk of TMP
		cache_dir ufs $dir/cache $(cache_mib) 16 256
		# a small memory cache and no big object in it: hits are read from the cache_dir
		cache_mem 8 MB
		maximum_object_size_in_memory 64 KB
		acl bench_client src 127.0.0.1/32
		acl bench_server dst 127.0.0.0/8
		http_access allow bench_client bench_server
		http_access deny all
	EOF
	# Squid refuses to run as root: then it runs as Debian's Squid user
	[ "$(id -u)" -ne 0 ] || echo "cache_effective_user proxy"
}

# start_squid: Squid in the foreground of a background job (-N, one process)
# on a free port with a fresh cache under TMP, whose swap dirs squid -z makes
# first; sets SQUID (its address) and SQUID_PID once it serves.
start_squid() {
	local dir=$TMP/squid port
	port=$(free_port) || { note "no free port for Squid"; return 1; }
	mkdir -p "$dir" && squid_conf "$dir" "$port" >"$dir/squid.conf" || return 1
	if [ "$(id -u)" -eq 0 ]; then # let its user reach and write its dir
		chmod o+x "$TMP" && chown -R proxy: "$dir" || return 1
	fi
	squid -n "$SQUID_NAME" -N -z -f "$dir/squid.conf" >>"$dir/stderr.log" 2>&1 ||
		{ note "squid -z failed: $(tail -5 "$dir/stderr.log")"; return 1; }
	squid -n "$SQUID_NAME" -N -f "$dir/squid.conf" >>"$dir/stderr.log" 2>&1 &
	SQUID_PID=$!
	if ! wait_port "$port" "$SQUID_PID" || ! wait_for "$dir/cache.log" 'Finished rebuilding storage'; then
		note "Squid did not start: $(tail -5 "$dir/stderr.log" "$dir/cache.log" 2>/dev/null)"
		return 1
	fi
	SQUID=127.0.0.1:$port
}

# stop_squid: stops Squid (it waits shutdown_lifetime for clients) and
# removes its cache and shared memory segments.
stop_squid() {
	[ -z "$SQUID_PID" ] || { kill -TERM "$SQUID_PID" 2>/dev/null && wait "$SQUID_PID"; }
	SQUID_PID=""
	rm -f "/dev/shm/$SQUID_NAME"-*
	rm -rf "$TMP/squid"
}

# nginx_conf DIR PORT: nginx's config: a reverse proxy of the origin on
# 127.0.0.1:PORT with proxy_cache (the key has the query string, so ?nginx=N
# are distinct entries), everything it writes in DIR.
nginx_conf() {
	local dir=$1 port=$2 user=""
	# nginx under root would run its workers as nobody, who cannot write DIR
	[ "$(id -u)" -ne 0 ] || user="user root;"
	cat <<-EOF
		# written by resumeproxy's scripts/bench.sh for its comparison rows
		$user
		worker_processes 1;
		pid $dir/nginx.pid;
		error_log $dir/error.log;
		events { worker_connections 64; }
		http {
		    access_log $dir/access.log;
		    client_body_temp_path $dir/temp/body;
		    proxy_temp_path $dir/temp/proxy;
		    fastcgi_temp_path $dir/temp/fastcgi;
		    uwsgi_temp_path $dir/temp/uwsgi;
		    scgi_temp_path $dir/temp/scgi;
		    sendfile on;
		    proxy_cache_path $dir/cache levels=1:2 keys_zone=bench:16m max_size=$(cache_mib)m inactive=1d use_temp_path=off;
		    server {
		        listen 127.0.0.1:$port;
		        location / {
		            proxy_pass $ORIGIN;
		            proxy_buffering on;
		            proxy_cache bench;
		            proxy_cache_key \$scheme\$proxy_host\$request_uri;
		            proxy_cache_valid 200 1h;
		            add_header X-Cache \$upstream_cache_status always;
		        }
		    }
		}
	EOF
}

# start_nginx: nginx (master, one worker, cache processes) in the foreground
# of a background job on a free port, with a fresh cache under TMP; sets NGINX
# (its address) and NGINX_PID (the master) once it serves.
start_nginx() {
	local dir=$TMP/nginx port
	port=$(free_port) || { note "no free port for nginx"; return 1; }
	mkdir -p "$dir/temp" && nginx_conf "$dir" "$port" >"$dir/nginx.conf" || return 1
	nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' >>"$dir/stderr.log" 2>&1 &
	NGINX_PID=$!
	if ! wait_port "$port" "$NGINX_PID"; then
		note "nginx did not start: $(tail -5 "$dir/stderr.log" "$dir/error.log" 2>/dev/null)"
		return 1
	fi
	NGINX=127.0.0.1:$port
}

# stop_nginx: stops nginx (fast shutdown) and removes its cache.
stop_nginx() {
	[ -z "$NGINX_PID" ] || { kill -TERM "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID"; }
	NGINX_PID=""
	rm -rf "$TMP/nginx"
}

# compare NAME VIA: the rows "warm hit via NAME" and "cold miss via NAME" of
# another cache, VIA (squid or nginx: its command, start_VIA and stop_VIA),
# timed by warm_runs and cold_runs like resumeproxy's. A cache that is not
# installed, does not start or cannot be measured gets rows that say so.
compare() {
	local name=$1 via=$2 warm cold
	warm="warm hit via $name ($(human "$SIZE"), complete entry)"
	cold="cold miss via $name ($(human "$SIZE"), written to the cache)"
	note "case: $warm; $cold"
	if ! command -v "$via" >/dev/null; then
		row "$warm" "–" "not installed" "–" comparison "–"
		row "$cold" "–" "not installed" "–" comparison "–"
		return
	fi
	if ! "start_$via"; then
		row "$warm" "–" "error: did not start (see stderr)" "–" comparison "–"
		row "$cold" "–" "error: did not start (see stderr)" "–" comparison "–"
		"stop_$via"
		return
	fi
	if warm_runs "$via"; then
		throughput_row "$warm" comparison "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
	else
		row "$warm" "–" "error (see stderr)" "–" comparison "–"
	fi
	if cold_runs "$via" "$via"; then
		throughput_row "$cold" comparison "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
	else
		row "$cold" "–" "error (see stderr)" "–" comparison "–"
	fi
	"stop_$via"
}

# compare_all: the comparison block, after resumeproxy's rows and on its own
# (resumeproxy is stopped and its cache gone), under a heading row.
compare_all() {
	row "**comparison: the same downloads through other caches, same origin, same run**" "" "" "" "" ""
	compare Squid squid
	compare "nginx proxy_cache" nginx
}

# squid_version, nginx_version: the version installed, or "not installed".
squid_version() { squid -v 2>/dev/null | sed -n '1s/.*Version //p' | grep . || echo "not installed"; }
nginx_version() { nginx -v 2>&1 | sed -n 's|.*nginx/||p' | grep . || echo "not installed"; }

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
	echo "- figures: median of $RUNS alternated direct/proxy runs; whole files with curl, ranges and small GETs with benchclient (keep-alive); each whole-file run starts after sync, with nothing dirty in the page cache (back to back, 1 GiB runs are held to the disk's write-back rate) and the origin's file read into it"
	[ "$COMPARE" = 0 ] ||
		echo "- comparison: Squid $(squid_version) (forward proxy, ufs cache_dir, cache_mem 8 MB: hits read from disk) and nginx $(nginx_version) (reverse proxy, proxy_cache, sendfile on), Debian packages; neither syncs what it writes to its cache (resumeproxy syncs in the background every 64 MiB)"
}

main() {
	local load_start
	load_start=$(cut -d' ' -f1-3 /proc/loadavg)
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
	if start_mitm_proxy; then
		run_case "warm hit through HTTPS interception" "≥ 0.80" case_tls_warm
		run_case "cold miss through HTTPS interception" "–" case_tls_cold
		stop_proxy
	else
		error_row "warm hit $(human "$SIZE") through HTTPS interception" "≥ 0.80"
		error_row "cold miss $(human "$SIZE") through HTTPS interception" "–"
	fi
	rm -rf "$TMP/cache-tls"
	run_case "memory" "≤ 64 MiB, ≤ 256 MiB, flat" case_memory
	[ "$COMPARE" = 0 ] || compare_all
	echo "$header"
	if [ -n "$DROP_FAILED" ]; then
		echo "- page cache: NOT dropped before cold and partial runs (needs root or sudo): later cold runs may be slower"
	else
		echo "- page cache: dropped (clean pages) before each cold and partial run"
	fi
	echo "- HTTPS: the origin behind Go's crypto/tls (ECDSA P-256 certificate, HTTP/1.1; curl negotiates $(tls_version)); through the proxy: --mitm, a leaf of a CA from resumeproxy ca init to curl, TLS again to the origin"
	# Other work on the machine slows direct and proxied runs unevenly.
	echo "- load average (1, 5, 15 min): $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "- runtime: ${SECONDS} s"
	echo
	echo "| case | direct | proxy | ratio | target | met? |"
	echo "| --- | --- | --- | --- | --- | --- |"
	printf '%s\n' "${ROWS[@]}"
	return 0 # whether or not the targets are met
}

# No "exit 0" after main: with it, shellcheck (0.9, issue 3183) reports every
# function called by name (the EXIT trap, run_case, compare) as unreachable.
main
