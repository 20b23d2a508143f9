#!/usr/bin/env bash
# bench.sh — the benchmark of issues 4 and 12 (make bench), black-box: it
# builds the real resumeproxy binary, serves generated files from local
# origins (internal/cmd/benchorigin: Go's http.FileServer, strong ETags,
# max-age) and measures every case through the proxy and directly (origin →
# client) in the same run, alternating the two. It prints a markdown table
# with the machine described: each row's figure, its reference (direct, or
# the best other cache of the same run), the ratio of the two, the target
# and whether it is met. It exits 0 whether or not the targets are met; it
# fails only when it cannot measure.
#
# Origins: one per limit, each on its own free port, all serving the same
# files: unthrottled (plain HTTP and HTTPS), one that limits each connection
# to BENCH_CONN_RATE (a token bucket per connection, as mirrors, release
# CDNs and object stores do) and one that limits all its connections
# together to BENCH_LINK_RATE (one shared bucket: a link). Direct and
# proxied downloads meet the same limits; a proxy that fetches one file
# over several connections at once (segmented fill) beats the first and
# can only match the second. Each origin counts the body bytes it sends
# (GET /.bench/stats): the throttled rows say what a proxied download cost
# the origin and how many requests ran at once.
#
# HTTPS: the unthrottled origin also serves the files behind TLS (HTTP/1.1,
# a CA it makes at start), and two rows time the warm and cold downloads of
# the same file over HTTPS through a proxy that intercepts them (--mitm,
# with a CA from "resumeproxy ca init" in the temp dir; it trusts the
# origin's CA through SSL_CERT_FILE), against direct HTTPS downloads.
#
# Clients: curl (one process per whole download, one connection) for the
# big transfers, and internal/cmd/benchclient (Go, keep-alive) for the 1000
# range requests, the small GETs on 32 connections and the parallel
# downloads.
#
# Everything binds to 127.0.0.1; nothing leaves the machine. Sizes and counts
# can be overridden from the environment (IEC suffixes: 512M, 1G):
#   BENCH_SIZE=1G            file of the warm, cold, partial and range cases
#   BENCH_MEM_SIZE=4G        file streamed for the peak-RSS case
#   BENCH_RUNS=3             alternated direct/proxy runs per case (median)
#   BENCH_WARM_RUNS=7        the same for warm hits, which take 0.3 s each
#                            and spread by ±10% from scheduling alone
#   BENCH_RANGES=1000        random 1 MiB range requests per run
#   BENCH_SMALL_REQUESTS=20000  10 KB GETs per run, on 32 connections
#   BENCH_PAR=100 BENCH_PAR_SIZE=64M  parallel downloads of the memory case
#   BENCH_CONN_RATE=32MiB    the per-connection limit of the throttled origin
#   BENCH_LINK_RATE=100MiB   the shared limit of the link-limited origin
#   BENCH_DIR=/tmp           where the files and caches go (one disk)
#   BENCH_COMPARE=0          skip the comparison with the caches below
#
# Comparison: a separate block of the table times the same downloads
# (warm_runs, cold_runs, partial_runs: same URLs of the unthrottled origin,
# same alternation with direct, same median) and the same small GETs
# through Squid, a forward proxy (curl -x), and nginx's proxy_cache, a
# reverse proxy (curl asks it for the origin's path and query), and the
# small GETs through tinyproxy, a forward proxy that does not cache. The
# rows "against the best other cache" then compare resumeproxy's cold,
# partial and small figures with the best of those in the same run, with the
# proxy CPU seconds per GiB of each (utime + stime of the proxy's processes
# from /proc, before and after each timed run). All three come from
# Debian's packages, installed with apt-get when missing (where an init
# system runs, Debian also starts their system services; this script
# neither uses nor stops them); a package that cannot be installed turns
# its rows into "not installed". Each runs on a free 127.0.0.1 port with
# its config, cache, logs and pid file in the temp dir, as the current user
# (under root, Squid, which refuses to run as root, runs as Debian's "proxy"
# user), and is stopped by pid. Their settings are the defaults except what
# the comparison needs: a cache on the same disk big enough for the files,
# hits from disk (Squid's memory cache kept small), loopback only, and for
# nginx Debian's worker_processes auto and keep-alive upstream connections
# (as resumeproxy and Squid keep them). Warm rows check X-Cache: HIT, cold
# rows MISS.
set -uo pipefail

SIZE=$(numfmt --from=iec "${BENCH_SIZE:-1G}")
MEM_SIZE=$(numfmt --from=iec "${BENCH_MEM_SIZE:-4G}")
PAR_SIZE=$(numfmt --from=iec "${BENCH_PAR_SIZE:-64M}")
RUNS=${BENCH_RUNS:-3}
WARM_RUNS=${BENCH_WARM_RUNS:-7}
CONN_RATE=${BENCH_CONN_RATE:-32MiB}
LINK_RATE=${BENCH_LINK_RATE:-100MiB}
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
ORIGIN_PIDS=() PROXY_PID="" PROXY=""
# ORIGIN: unthrottled (ORIGIN_TLS: the same over HTTPS); ORIGIN_CONN: each
# connection limited to CONN_RATE; ORIGIN_LINK: all limited to LINK_RATE.
ORIGIN="" ORIGIN_TLS="" ORIGIN_CONN="" ORIGIN_LINK=""
# ORIGIN_CA: the origin's CA (it writes it at start); MITM_DIR: the
# interception CA, which curl trusts through the proxy.
ORIGIN_CA=$TMP/origin-ca.pem MITM_DIR=$TMP/mitm-ca
SQUID_PID="" NGINX_PID="" TINYPROXY_PID="" SQUID="" NGINX="" TINYPROXY=""
# RELAY: internal/cmd/benchrelay, the least a net/http proxy does.
RELAY_PID="" RELAY=""
# Squid names its shared memory segments (/dev/shm) after its service name:
# one of our own, so that no other Squid on the machine shares them.
SQUID_NAME=rpbench$$
ROWS=() DIRECT_TIMES=() VIA_TIMES=()
# Per timed run through a proxy (cold_runs, partial_runs): its CPU seconds,
# the body bytes its origin sent, and the most origin requests at once.
VIA_CPU=() VIA_ORIGIN=() VIA_PEAK=()
# LAST_MIBS, LAST_CPU: the median MiB/s and CPU s/GiB of the last
# throughput_row through a proxy, for the rows against the other caches.
LAST_MIBS="" LAST_CPU=""
# FIG[kind.who]: resumeproxy's and each other cache's figure for the rows
# against the best other cache (kind: cold, partial, small_rps, small_p50;
# who: resumeproxy, Squid, ...); CPU[kind.who] beside it.
declare -A FIG=() CPU=()
CLK_TCK=$(getconf CLK_TCK)
DROP_FAILED=""
SECONDS=0

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# cleanup stops the processes this script started, by pid, and removes TMP.
cleanup() {
	for pid in $PROXY_PID $SQUID_PID $NGINX_PID $TINYPROXY_PID $RELAY_PID "${ORIGIN_PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	rm -f "/dev/shm/$SQUID_NAME"-* # left behind when Squid does not exit cleanly
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# install_deps installs what is missing with apt-get: curl, which the run
# needs, and squid, nginx and tinyproxy for the comparison, whose rows say
# "not installed" when they cannot be (one package at a time, so that one failure
# does not cost the others).
install_deps() {
	command -v go >/dev/null || die "go is required (Go 1.26, see go.mod)"
	local missing=() sudo="" pkg
	for pkg in curl squid nginx tinyproxy; do
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
	for pkg in squid nginx tinyproxy; do
		[ "$COMPARE" = 0 ] || command -v "$pkg" >/dev/null ||
			note "$pkg is not installed: its comparison rows will say so"
	done
}

build() {
	go build -o "$BIN/resumeproxy" . || die "build failed"
	go build -o "$BIN/benchorigin" ./internal/cmd/benchorigin || die "build failed"
	go build -o "$BIN/benchclient" ./internal/cmd/benchclient || die "build failed"
	go build -o "$BIN/benchrelay" ./internal/cmd/benchrelay || die "build failed"
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

# start_origin NAME [ARGS...]: an origin with ARGS on a free port; it
# writes its address to TMP/NAME.addr (and the files of ARGS) before it
# serves, and logs to TMP/NAME.log.
start_origin() {
	local name=$1
	shift
	"$BIN/benchorigin" -dir "$DATA" -addr-file "$TMP/$name.addr" "$@" 2>"$TMP/$name.log" &
	ORIGIN_PIDS+=($!)
	wait_for "$TMP/$name.addr" 127.0.0.1 || die "origin $name did not start: $(cat "$TMP/$name.log")"
}

# start_origins: the unthrottled origin on two free ports, plain HTTP
# (ORIGIN) and HTTPS (ORIGIN_TLS, its CA in ORIGIN_CA, written before the
# address), and the two throttled ones (ORIGIN_CONN, ORIGIN_LINK).
start_origins() {
	start_origin origin -tls-addr 127.0.0.1:0 -tls-addr-file "$TMP/origin-tls.addr" -ca-file "$ORIGIN_CA"
	wait_for "$TMP/origin-tls.addr" 127.0.0.1 || die "origin did not start: $(cat "$TMP/origin.log")"
	start_origin origin-conn -conn-rate "$CONN_RATE"
	start_origin origin-link -link-rate "$LINK_RATE"
	ORIGIN=http://$(cat "$TMP/origin.addr")
	ORIGIN_TLS=https://$(cat "$TMP/origin-tls.addr")
	ORIGIN_CONN=http://$(cat "$TMP/origin-conn.addr")
	ORIGIN_LINK=http://$(cat "$TMP/origin-link.addr")
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
# "HIT from host", nginx its $upstream_cache_status; XCACHE "*" takes any,
# and the word is left in TMP/xcache). An https URL is
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
	echo "${xc:-none}" >"$TMP/xcache"
	[ "$via" = direct ] || [ "$want" = "*" ] || [ "$xc" = "$want" ] ||
		{ note "$via $url: X-Cache $xc, want $want"; return 1; }
	echo "$t"
}

# client ARGS...: runs benchclient and prints its key=value line.
client() {
	"$BIN/benchclient" "$@" || { note "benchclient $* failed"; return 1; }
}

# field KEY LINE: the value of KEY in a benchclient line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# proc_pids VIA: the processes of a proxy: resumeproxy, or another cache
# and its children (nginx's workers, Squid's helpers).
proc_pids() {
	local pid
	case $1 in
	proxy) pid=$PROXY_PID ;;
	squid) pid=$SQUID_PID ;;
	nginx) pid=$NGINX_PID ;;
	tinyproxy) pid=$TINYPROXY_PID ;;
	esac
	[ -n "$pid" ] || return 0
	echo "$pid"
	cat "/proc/$pid/task/"*/children 2>/dev/null
}

# cpu_ticks VIA: utime + stime, in clock ticks, of the processes of VIA
# (proc(5) stat fields 14 and 15, counted after the command name, which may
# hold spaces).
cpu_ticks() {
	local pid
	for pid in $(proc_pids "$1"); do
		sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null
	done | awk '{ t += $12 + $13 } END { print t + 0 }'
}

# origin_stats BASE: the counters of the origin at BASE (GET /.bench/stats,
# a line of body_bytes, requests, active and peak_active; each read starts
# a new peak, so read once and take every field from that line).
origin_stats() { curl -s --noproxy '*' --cacert "$ORIGIN_CA" "$1/.bench/stats"; }

# measure_begin VIA BASE, measure_end VIA BASE: around one timed run
# through VIA from the origin at BASE; measure_end adds the run's CPU
# seconds, origin body bytes and peak of origin requests at once to
# VIA_CPU, VIA_ORIGIN and VIA_PEAK.
measure_begin() {
	M_TICKS=$(cpu_ticks "$1")
	M_BYTES=$(field body_bytes "$(origin_stats "$2")") # and a new peak
}
measure_end() {
	local ticks stats bytes
	ticks=$(cpu_ticks "$1") stats=$(origin_stats "$2")
	bytes=$(field body_bytes "$stats")
	VIA_CPU+=("$(awk "BEGIN { printf \"%.3f\", ($ticks - $M_TICKS) / $CLK_TCK }")")
	VIA_ORIGIN+=($((${bytes:-0} - ${M_BYTES:-0})))
	VIA_PEAK+=("$(field peak_active "$stats")")
}

# measure_reset: empties VIA_CPU, VIA_ORIGIN and VIA_PEAK for a new case.
measure_reset() { VIA_CPU=() VIA_ORIGIN=() VIA_PEAK=(); }

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

# row CASE REFERENCE FIGURE RATIO TARGET MET: REFERENCE is direct, or the
# best other cache; RATIO is FIGURE to REFERENCE (time ratios are inverted:
# higher is better, except for latency, where the row says so).
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }
# error_row CASE TARGET: "–" for a case without a target.
error_row() {
	local met="**no**"
	[ "$2" != "–" ] || met="–"
	row "$1" "–" "error (see stderr)" "–" "$2" "$met"
}

# cpu_per_gib BYTES: sets LAST_CPU to the median of VIA_CPU per GiB of
# BYTES (empty when the runs did not measure it).
cpu_per_gib() {
	LAST_CPU=""
	[ ${#VIA_CPU[@]} -gt 0 ] || return 0
	LAST_CPU=$(calc "$(median "${VIA_CPU[@]}") / ($1 / 1073741824)")
	note "CPU seconds per run [${VIA_CPU[*]}], origin bytes [${VIA_ORIGIN[*]}], origin requests at once [${VIA_PEAK[*]}]"
}

# via_extras [origin]: what the timed runs through a proxy cost: LAST_CPU
# (proxy CPU seconds per GiB sent) and, with "origin", the median origin
# body bytes (VIA_ORIGIN) and the most origin requests at once (VIA_PEAK).
# Prints "" without measurements.
via_extras() {
	local peak
	[ -n "$LAST_CPU" ] || return 0
	printf '; proxy CPU %s s/GiB' "$LAST_CPU"
	[ "${1:-}" = origin ] || return 0
	peak=$(printf '%s\n' "${VIA_PEAK[@]}" | sort -g | tail -1)
	printf '; origin sent %s, at most %s requests at once' "$(human "$(median "${VIA_ORIGIN[@]}")")" "$peak"
}

# throughput_row CASE TARGET BYTES "DIRECT_SECONDS..." "PROXY_SECONDS..."
# [origin]: the row of a whole-file case against direct; ratio = direct
# time / proxy time (throughput ratio); with the proxy's CPU (and origin
# bytes) when the runs measured them. TARGET "comparison" makes a row of
# another cache, with no target; "–" a row of resumeproxy with no target.
# Sets LAST_MIBS and LAST_CPU.
throughput_row() {
	local name=$1 target=$2 bytes=$3 d p cells
	# shellcheck disable=SC2086 # $4 and $5 are lists of numbers, split on purpose
	d=$(median $4) p=$(median $5)
	note "$name: seconds direct [$4], proxy [$5]"
	LAST_MIBS=$(mibs "$bytes" "$p")
	cpu_per_gib "$bytes"
	cells=("$(mibs "$bytes" "$d") MiB/s ($(secs "$d") s)" "$LAST_MIBS MiB/s ($(secs "$p") s)$(via_extras "${6:-}")"
		"$(calc "$d / $p")")
	if [ "$target" = comparison ] || [ "$target" = "–" ]; then
		row "$name" "${cells[@]}" "$target" "–"
	else
		row "$name" "${cells[@]}" "≥ $target" "$(met "$d / $p >= $target")"
	fi
}

# warm_runs VIA [BASE]: big.bin once through VIA (the MISS that stores it),
# then WARM_RUNS times alternately directly and through VIA (a HIT each), from
# the origin at BASE (ORIGIN, or ORIGIN_TLS); sets DIRECT_TIMES and
# VIA_TIMES to the seconds. Shared with the HTTPS and comparison rows so
# that every case is measured the same way.
warm_runs() {
	local via=$1 url=${2:-$ORIGIN}/big.bin t
	DIRECT_TIMES=() VIA_TIMES=()
	measure_reset
	settle
	fetch "$via" "$url" MISS "$SIZE" >/dev/null || return 1 # populates
	for ((r = 0; r < WARM_RUNS; r++)); do
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
# warm_runs, and VIA_CPU, VIA_ORIGIN and VIA_PEAK.
cold_runs() {
	local via=$1 base=${3:-$ORIGIN} t
	local url="$base/big.bin?$2"
	DIRECT_TIMES=() VIA_TIMES=()
	measure_reset
	for ((r = 0; r < RUNS; r++)); do
		settle drop
		t=$(fetch direct "$url=$r" "" "$SIZE") || return 1
		DIRECT_TIMES+=("$t")
		settle drop
		measure_begin "$via" "$base"
		t=$(fetch "$via" "$url=$r" MISS "$SIZE") || return 1
		measure_end "$via" "$base"
		VIA_TIMES+=("$t")
	done
}

# partial_runs VIA KEY XCACHE [BASE]: RUNS times, big.bin?KEY=N directly,
# then through VIA after an untimed download of its first half, then one
# timed full GET, which XCACHE must answer ("*": any). How the half is left:
# - resumeproxy: a Range request for bytes 0 to half-1. Of an entry nobody
#   has, it is forwarded with that Range (policy.ForwardRange), so the fill
#   stops at the half exactly. A client that reads half a full GET and
#   leaves would leave more: after quick abort stops the fill, the proxy
#   keeps what the kernel already holds for the connection (several MiB
#   past the half on loopback);
# - the other caches: a client that reads half a full GET and leaves (see
#   abandon), the download broken halfway that this case is about. A range
#   would not be the same request for them: nginx answers it by fetching
#   and storing the whole file (the timed request is then a hit of a file
#   fetched whole), Squid forwards it and stores nothing.
# With PARTIAL_ABANDON=1, resumeproxy gets the other caches' client too
# (case_partial_finish).
# Sets what cold_runs sets, and VIA_XCACHE to the X-Cache words of the timed
# runs, which the rows of the other caches show.
PARTIAL_ABANDON=0
partial_runs() {
	local via=$1 want=$3 base=${4:-$ORIGIN} t half=$((SIZE / 2))
	local url="$base/big.bin?$2"
	DIRECT_TIMES=() VIA_TIMES=() VIA_XCACHE=()
	measure_reset
	for ((r = 0; r < RUNS; r++)); do
		settle drop
		t=$(fetch direct "$url=$r" "" "$SIZE") || return 1
		DIRECT_TIMES+=("$t")
		settle drop
		if [ "$via" = proxy ] && [ "$PARTIAL_ABANDON" = 0 ]; then
			fetch "$via" "$url=$r" MISS "$half" -r "0-$((half - 1))" >/dev/null || return 1
		else
			abandon "$via" "$url=$r" "$half"
		fi
		settle # not drop: the cached half stays in memory, as a hit's would
		measure_begin "$via" "$base"
		t=$(fetch "$via" "$url=$r" "$want" "$SIZE") || return 1
		measure_end "$via" "$base"
		VIA_TIMES+=("$t")
		VIA_XCACHE+=("$(cat "$TMP/xcache")")
	done
}

# abandon VIA URL BYTES: a client that reads the first BYTES of URL through
# VIA (proxy, squid or nginx, as fetch asks them) and leaves: head exits,
# curl fails to write and closes the connection. Then a second for the
# cache to finish with it (it is not timed).
abandon() {
	local via=$1 url=$2 args=(-s)
	case $via in
	proxy) args+=(-x "http://$PROXY") ;;
	squid) args+=(-x "http://$SQUID") ;;
	nginx) args+=(--noproxy '*') url=http://$NGINX${url#"$ORIGIN"} ;;
	esac
	curl "${args[@]}" "$url" | head -c "$3" >/dev/null
	sleep 1
}

case_warm() {
	warm_runs proxy || return 1
	throughput_row "warm hit $(human "$SIZE"), plain HTTP (complete entry)" 0.95 "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
}

# case_cold, case_partial: unthrottled loopback. Their target is against
# the other caches (the rows after the comparison); here, against direct,
# they are costs.
case_cold() {
	cold_runs proxy run || return 1
	throughput_row "cold miss $(human "$SIZE"), unthrottled loopback" "–" "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
	FIG[cold.resumeproxy]=$LAST_MIBS CPU[cold.resumeproxy]=$LAST_CPU
}

case_partial() {
	partial_runs proxy part PARTIAL || return 1
	throughput_row "partial (first 50% cached) $(human "$SIZE"), unthrottled loopback" "–" "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
	FIG[partial.resumeproxy]=$LAST_MIBS CPU[partial.resumeproxy]=$LAST_CPU
}

# case_partial_finish: the other caches' partial case for resumeproxy, on
# its own terms. nginx keeps fetching a cacheable response its client left
# (it has no setting against it) and answers the next request with a hit;
# resumeproxy by default keeps what it has and resumes it (case_partial).
# Here a resumeproxy told to finish, as nginx does (quick_abort
# finish_above_percent: 50), gets the same client: it reads half a full
# GET and leaves; the row shows the timed request's X-Cache (HIT when the
# finish was done before it).
case_partial_finish() {
	local conf=$TMP/finish.yaml
	printf 'quick_abort:\n  finish_above_percent: 50\n' >"$conf"
	[ -z "$PROXY_PID" ] || stop_proxy
	rm -rf "$TMP/cache"
	start_proxy "$TMP/cache" --config "$conf"
	PARTIAL_ABANDON=1
	partial_runs proxy partfin "*"
	local rc=$?
	PARTIAL_ABANDON=0
	[ "$rc" = 0 ] || return 1
	throughput_row "partial as the other caches get it: a client reads half $(human "$SIZE") and leaves, with quick_abort finish_above_percent: 50 (finishing as nginx does), unthrottled loopback, timed request X-Cache: $(printf '%s\n' "${VIA_XCACHE[@]}" | sort -u | paste -sd/)" \
		"–" "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
	FIG[partialfinish.resumeproxy]=$LAST_MIBS CPU[partialfinish.resumeproxy]=$LAST_CPU
}

# case_conn_cold, case_conn_partial: from the origin that limits each
# connection to CONN_RATE. Direct is one connection (curl); the proxy may
# fetch over several (segmented fill), up to its per-download cap.
case_conn_cold() {
	cold_runs proxy conn "$ORIGIN_CONN" || return 1
	throughput_row "cold $(human "$SIZE"), origin limits each connection to $CONN_RATE/s" 3.0 "$SIZE" \
		"${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}" origin
}

case_conn_partial() {
	partial_runs proxy connpart PARTIAL "$ORIGIN_CONN" || return 1
	throughput_row "partial (first 50% cached) $(human "$SIZE"), same origin" 3.0 "$SIZE" \
		"${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}" origin
}

# case_link_cold: from the origin whose connections share one LINK_RATE:
# no number of connections gets past it, so matching direct is the bar.
case_link_cold() {
	cold_runs proxy link "$ORIGIN_LINK" || return 1
	throughput_row "cold $(human "$SIZE"), origin limits the whole link to $LINK_RATE/s" 0.95 "$SIZE" \
		"${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}" origin
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

# small_runs VIA: SMALL_REQUESTS GETs of a 10 KB no-store file, each a
# distinct URL (?i=N), on SMALL_CONNS connections, RUNS times alternately
# directly and through VIA (resumeproxy, squid or tinyproxy as a forward
# proxy, nginx as a reverse proxy); sets SMALL_D and SMALL_V to the medians
# "p50_ms req_per_s" of each. Through resumeproxy every reply must be a
# MISS: it relays, it does not store.
small_runs() {
	local via=$1 dl=() vl=() dt=() vt=() out args=()
	local url="$ORIGIN/nostore/small.bin?i={i}" common=(-requests "$SMALL_REQUESTS" -conns "$SMALL_CONNS")
	case $via in
	proxy) args=(-url "$url" -proxy "http://$PROXY" -expect-xcache MISS) ;;
	squid) args=(-url "$url" -proxy "http://$SQUID") ;;
	tinyproxy) args=(-url "$url" -proxy "http://$TINYPROXY") ;;
	relay) args=(-url "$url" -proxy "http://$RELAY") ;;
	nginx) args=(-url "http://$NGINX${url#"$ORIGIN"}") ;;
	esac
	for ((r = 0; r < RUNS; r++)); do
		out=$(client -url "$url" "${common[@]}") || return 1
		dl+=("$(field p50_ms "$out")") dt+=("$(field req_per_s "$out")")
		out=$(client "${args[@]}" "${common[@]}") || return 1
		vl+=("$(field p50_ms "$out")") vt+=("$(field req_per_s "$out")")
	done
	note "small via $via: p50 ms direct [${dl[*]}], via [${vl[*]}]; req/s direct [${dt[*]}], via [${vt[*]}]"
	SMALL_D="$(median "${dl[@]}") $(median "${dt[@]}")"
	SMALL_V="$(median "${vl[@]}") $(median "${vt[@]}")"
}

# small_rows NAME WHO: the rows of small_runs' figures against direct (no
# target: issue 12 measures them against the other caches), and the
# figures kept in FIG for those rows.
small_rows() {
	local dp dt vp vt
	read -r dp dt <<<"$SMALL_D"
	read -r vp vt <<<"$SMALL_V"
	row "small pass-through via $1: p50 latency (10 KB no-store, $SMALL_CONNS conns)" "$dp ms" "$vp ms" \
		"$(calc "$vp / $dp")× (lower is better)" "–" "–"
	row "small pass-through via $1: throughput" "$dt req/s" "$vt req/s" "$(calc "$vt / $dt")" "–" "–"
	FIG[small_p50.$2]=$vp FIG[small_rps.$2]=$vt
}

case_small() {
	small_runs proxy || return 1
	small_rows resumeproxy resumeproxy
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

# cache_mib: the size to give another cache, in MiB: twice what the warm,
# cold and partial runs store, so that it never evicts during them.
cache_mib() { echo $((2 * (2 * RUNS + 1) * SIZE / 1048576 + 1)); }

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

# nginx_conf DIR PORT: nginx's config: a reverse proxy of the unthrottled
# origin on
# 127.0.0.1:PORT with proxy_cache (the key has the query string, so ?nginx=N
# are distinct entries), everything it writes in DIR.
nginx_conf() {
	local dir=$1 port=$2 user=""
	# nginx under root would run its workers as nobody, who cannot write DIR
	[ "$(id -u)" -ne 0 ] || user="user root;"
	cat <<-EOF
		# written by resumeproxy's scripts/bench.sh for its comparison rows
		$user
		# as Debian's own nginx.conf: a worker per core
		worker_processes auto;
		pid $dir/nginx.pid;
		error_log $dir/error.log;
		events { worker_connections 1024; }
		http {
		    # keep-alive upstream connections, as resumeproxy and Squid keep them
		    upstream origin {
		        server ${ORIGIN#http://};
		        keepalive 32;
		    }
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
		            proxy_pass http://origin;
		            proxy_http_version 1.1;
		            proxy_set_header Connection "";
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

# start_nginx: nginx (master, a worker per core, cache processes) in the foreground
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

# tinyproxy_conf DIR PORT: tinyproxy's config: a forward proxy on
# 127.0.0.1:PORT for loopback clients, its log and pid file in DIR;
# everything else is left at tinyproxy's defaults (it runs as the current
# user, and warns so under root).
tinyproxy_conf() {
	cat <<-EOF
		# written by resumeproxy's scripts/bench.sh for its comparison rows
		Port $2
		Listen 127.0.0.1
		Timeout 600
		Allow 127.0.0.1
		LogFile "$1/tinyproxy.log"
		LogLevel Warning
		PidFile "$1/tinyproxy.pid"
	EOF
}

# start_tinyproxy: tinyproxy in the foreground (-d) of a background job on
# a free port; sets TINYPROXY and TINYPROXY_PID once it serves.
start_tinyproxy() {
	local dir=$TMP/tinyproxy port
	port=$(free_port) || { note "no free port for tinyproxy"; return 1; }
	mkdir -p "$dir" && tinyproxy_conf "$dir" "$port" >"$dir/tinyproxy.conf" || return 1
	tinyproxy -d -c "$dir/tinyproxy.conf" >>"$dir/stderr.log" 2>&1 &
	TINYPROXY_PID=$!
	if ! wait_port "$port" "$TINYPROXY_PID"; then
		note "tinyproxy did not start: $(tail -5 "$dir/stderr.log" "$dir/tinyproxy.log" 2>/dev/null)"
		return 1
	fi
	TINYPROXY=127.0.0.1:$port
}

stop_tinyproxy() {
	[ -z "$TINYPROXY_PID" ] || { kill -TERM "$TINYPROXY_PID" 2>/dev/null && wait "$TINYPROXY_PID"; }
	TINYPROXY_PID=""
	rm -rf "$TMP/tinyproxy"
}

# start_relay: internal/cmd/benchrelay on a free port; sets RELAY and
# RELAY_PID once it serves.
start_relay() {
	"$BIN/benchrelay" -addr-file "$TMP/relay.addr" 2>"$TMP/relay.log" &
	RELAY_PID=$!
	wait_for "$TMP/relay.addr" 127.0.0.1 || { note "benchrelay did not start: $(cat "$TMP/relay.log")"; return 1; }
	RELAY=$(cat "$TMP/relay.addr")
}

stop_relay() {
	kill "$RELAY_PID" && wait "$RELAY_PID" 2>/dev/null
	RELAY_PID=""
}

# floor_small: the small GETs through benchrelay, a net/http server and
# client with nothing between them (no cache, no log, no goproxy), which
# resumeproxy is built on: the most any proxy built on net/http relays on
# this machine. Its figures are kept apart from the other caches' (FLOOR),
# and versus_all sets resumeproxy's beside them.
FLOOR=""
floor_small() {
	local name="a bare net/http relay (internal/cmd/benchrelay: no cache, no log)"
	note "case: small pass-through via the bare net/http relay"
	if ! start_relay; then
		row "small pass-through via $name" "–" "error: did not start (see stderr)" "–" comparison "–"
		return
	fi
	if small_runs relay; then
		small_rows "$name" floor
		FLOOR="${FIG[small_p50.floor]} ${FIG[small_rps.floor]}"
		unset 'FIG[small_p50.floor]' 'FIG[small_rps.floor]'
	else
		row "small pass-through via $name" "–" "error (see stderr)" "–" comparison "–"
	fi
	stop_relay
}

# compare NAME VIA CASES...: the rows of another cache, VIA (squid, nginx or
# tinyproxy: its command, start_VIA and stop_VIA), for CASES (warm, cold,
# partial, small), each timed like resumeproxy's; the cold, partial and
# small figures go to FIG and CPU under NAME. A cache that is not
# installed, does not start or cannot be measured gets rows that say so.
compare() {
	local name=$1 via=$2 c why=""
	shift 2
	note "case: comparison via $name ($*)"
	if ! command -v "$via" >/dev/null; then
		why="not installed"
	elif ! "start_$via"; then
		why="error: did not start (see stderr)"
	fi
	for c in "$@"; do
		if [ -n "$why" ]; then
			row "$(compare_name "$c" "$name")" "–" "$why" "–" comparison "–"
		else
			"compare_$c" "$name" "$via" || row "$(compare_name "$c" "$name")" "–" "error (see stderr)" "–" comparison "–"
		fi
	done
	[ "$why" = "not installed" ] || "stop_$via"
}

# compare_name CASE NAME: the name of a comparison row.
compare_name() {
	case $1 in
	warm) echo "warm hit via $2 ($(human "$SIZE"), complete entry)" ;;
	cold) echo "cold miss via $2 ($(human "$SIZE"), unthrottled loopback)" ;;
	partial) echo "partial (first 50% cached) via $2 ($(human "$SIZE"), unthrottled loopback)" ;;
	small) echo "small pass-through via $2" ;;
	esac
}

compare_warm() {
	warm_runs "$2" || return 1
	throughput_row "$(compare_name warm "$1")" comparison "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
}

compare_cold() {
	cold_runs "$2" "$2" || return 1
	throughput_row "$(compare_name cold "$1")" comparison "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
	FIG[cold.$1]=$LAST_MIBS CPU[cold.$1]=$LAST_CPU
}

# compare_partial: what the other cache makes of a download left halfway,
# then asked for again (partial_runs): the X-Cache of the timed request goes
# into the row (MISS: nothing of the half was kept).
compare_partial() {
	partial_runs "$2" "${2}part" "*" || return 1
	throughput_row "$(compare_name partial "$1"), timed request X-Cache: $(printf '%s\n' "${VIA_XCACHE[@]}" | sort -u | paste -sd/)" \
		comparison "$SIZE" "${DIRECT_TIMES[*]}" "${VIA_TIMES[*]}"
	FIG[partial.$1]=$LAST_MIBS CPU[partial.$1]=$LAST_CPU
}

compare_small() {
	small_runs "$2" || return 1
	small_rows "$1" "$1"
}

# compare_all: the comparison block, after resumeproxy's rows and on its own
# (resumeproxy is stopped and its cache gone), under a heading row.
compare_all() {
	row "**comparison: the same downloads through other caches, same origin, same run**" "" "" "" "" ""
	compare Squid squid warm cold partial small
	compare "nginx proxy_cache" nginx warm cold partial small
	compare tinyproxy tinyproxy small
	floor_small
}

# best KIND [low]: the other cache with the best FIG of KIND (the highest;
# with low, the lowest), as "NAME VALUE"; nothing when none was measured.
best() {
	local k
	for k in "${!FIG[@]}"; do
		[[ $k == "$1".* && $k != "$1.resumeproxy" ]] && printf '%s\t%s\n' "${FIG[$k]}" "${k#"$1".}"
	done | sort -g -t $'\t' -k1,1 | if [ "${2:-}" = low ]; then head -1; else tail -1; fi
}

# versus_row NAME KIND UNIT [low|high] [MINE]: resumeproxy's FIG of MINE
# (default KIND) against the best other cache's FIG of KIND in this run
# (with both CPU figures when there are): the target is at least as good.
versus_row() {
	local name=$1 kind=$2 unit=$3 mk=${5:-$2} b val who ratio cpu_b="" cpu_m=""
	local mine=${FIG[$mk.resumeproxy]:-}
	b=$(best "$kind" "${4:-}")
	if [ -z "$mine" ] || [ -z "$b" ]; then
		row "$name" "${b:-no other cache measured}" "${mine:-not measured}" "–" "≥ the best" "–"
		return
	fi
	IFS=$'\t' read -r val who <<<"$b"
	[ -z "${CPU[$kind.$who]:-}" ] || cpu_b="; proxy CPU ${CPU[$kind.$who]} s/GiB"
	[ -z "${CPU[$mk.resumeproxy]:-}" ] || cpu_m="; proxy CPU ${CPU[$mk.resumeproxy]} s/GiB"
	if [ "${4:-}" = low ]; then
		ratio=$(calc "$mine / $val")
		row "$name" "$val $unit ($who$cpu_b)" "$mine $unit$cpu_m" "$ratio× (lower is better)" "≤ 1.00× the best" "$(met "$mine <= $val")"
	else
		ratio=$(calc "$mine / $val")
		row "$name" "$val $unit ($who$cpu_b)" "$mine $unit$cpu_m" "$ratio" "≥ 1.00× the best" "$(met "$mine >= $val")"
	fi
}

# versus_all: issue 12's rows against the other caches of the run.
versus_all() {
	row "**resumeproxy against the best other cache of this run**" "" "" "" "" ""
	versus_row "cold miss $(human "$SIZE"), unthrottled loopback (best of Squid, nginx)" cold MiB/s
	versus_row "partial (first 50% cached) $(human "$SIZE"), unthrottled loopback (best of Squid, nginx)" partial MiB/s
	versus_row "partial as the other caches get it (a client reads half and leaves), resumeproxy finishing as nginx does (best of Squid, nginx)" partial MiB/s high partialfinish
	versus_row "small pass-through throughput, 10 KB, $SMALL_CONNS conns (best of Squid, nginx, tinyproxy)" small_rps req/s
	versus_row "small pass-through p50 latency, 10 KB, $SMALL_CONNS conns (best of Squid, nginx, tinyproxy)" small_p50 ms low
	local fp fr mp=${FIG[small_p50.resumeproxy]:-} mr=${FIG[small_rps.resumeproxy]:-}
	if [ -n "$FLOOR" ] && [ -n "$mr" ]; then
		read -r fp fr <<<"$FLOOR"
		row "small pass-through, 10 KB, $SMALL_CONNS conns, against the bare net/http relay" "$fr req/s, p50 $fp ms" \
			"$mr req/s, p50 $mp ms" "$(calc "$mr / $fr") (p50 $(calc "$mp / $fp")×)" "–" "–"
	fi
}

# squid_version, nginx_version, tinyproxy_version: the version installed,
# or "not installed".
squid_version() { squid -v 2>/dev/null | sed -n '1s/.*Version //p' | grep . || echo "not installed"; }
nginx_version() { nginx -v 2>&1 | sed -n 's|.*nginx/||p' | grep . || echo "not installed"; }
tinyproxy_version() { tinyproxy -v 2>/dev/null | sed -n 's/^tinyproxy //p' | grep . || echo "not installed"; }

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
	echo "- origins: Go http.FileServer, strong ETag, max-age=3600: unthrottled (sendfile), one limiting each connection to $CONN_RATE/s (a token bucket per connection), one limiting all its connections together to $LINK_RATE/s (one shared bucket), each bucket holding 256 KiB; direct = origin → client (curl, one connection) without a proxy"
	echo "- figures: median of $RUNS alternated direct/proxy runs ($WARM_RUNS for warm hits); whole files with curl, ranges and small GETs with benchclient (keep-alive); each whole-file run starts after sync, with nothing dirty in the page cache (back to back, 1 GiB runs are held to the disk's write-back rate) and the origin's file read into it; proxy CPU = utime + stime of the proxy's processes over the timed run, per GiB sent to the client"
	echo "- resumeproxy: default configuration (segmented fill on, as by default), a fresh cache for each group of rows"
	[ "$COMPARE" = 0 ] ||
		echo "- comparison: Squid $(squid_version) (forward proxy, ufs cache_dir, cache_mem 8 MB: hits read from disk), nginx $(nginx_version) (reverse proxy, proxy_cache, sendfile on, worker_processes auto, keep-alive upstream) and tinyproxy $(tinyproxy_version) (forward proxy, no cache), Debian packages, against the unthrottled origin; neither Squid nor nginx syncs what it writes to its cache (resumeproxy syncs in the background every 64 MiB)"
}

# fresh_proxy: stops the proxy if one runs and starts one on an empty
# cache (TMP/cache), so that the cases of a group do not pay for the
# entries of the last (eviction, a disk filling with copies of big.bin).
fresh_proxy() {
	[ -z "$PROXY_PID" ] || stop_proxy
	rm -rf "$TMP/cache"
	start_proxy "$TMP/cache"
}

main() {
	local load_start
	load_start=$(cut -d' ' -f1-3 /proc/loadavg)
	install_deps
	build
	make_files
	local header
	header=$(describe_machine)
	start_origins
	fresh_proxy
	run_case "cold, per-connection limit" "≥ 3.0" case_conn_cold
	fresh_proxy
	run_case "partial, per-connection limit" "≥ 3.0" case_conn_partial
	fresh_proxy
	run_case "cold, link limit" "≥ 0.95" case_link_cold
	fresh_proxy
	run_case "warm hit" "≥ 0.95" case_warm
	run_case "range hit" "≥ 0.80" case_ranges
	fresh_proxy
	run_case "cold miss, unthrottled" "–" case_cold
	fresh_proxy
	run_case "partial, unthrottled" "–" case_partial
	run_case "partial, unthrottled, finishing as nginx does" "–" case_partial_finish
	fresh_proxy
	run_case "small pass-through" "–" case_small
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
	if [ "$COMPARE" != 0 ]; then
		compare_all
		versus_all
	fi
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
	echo "| case | reference (direct, or the best other cache) | measured | ratio | target | met? |"
	echo "| --- | --- | --- | --- | --- | --- |"
	printf '%s\n' "${ROWS[@]}"
	return 0 # whether or not the targets are met
}

# No "exit 0" after main: with it, shellcheck (0.9, issue 3183) reports every
# function called by name (the EXIT trap, run_case, compare) as unreachable.
main
