#!/usr/bin/env bash
# Loopback load test of Keygate's /auth/verify with Debian's wrk, against a
# bare net/http handler, a SHA-256 + map handler and oauth2-proxy's
# /oauth2/auth, all measured in the same run (DESIGN.md, "Performance
# targets"). Results and how to read them: bench/README.md.
#
#   bash bench/load.sh
#
# Environment (all optional):
#   WRK_ARGS       wrk load shape            (default: -t2 -c50 -d10s)
#   ROUNDS         bare/Keygate pairs        (default: 2)
#   BENCH_PG_URL   PostgreSQL server; a fresh schema is made and dropped
#                  (default: postgres://postgres@127.0.0.1:5432/test?sslmode=disable;
#                   set to "skip" to leave PostgreSQL out)
#   BENCH_ONLY     "metered" runs only the metered-forwarding figures, "verify"
#                  everything but them
#   BENCH_KEYGATE_BIN    a keygate binary to measure instead of building ./cmd/keygate
#                  (e.g. an older build, for before/after figures)
#   BENCH_O2P      "skip" leaves oauth2-proxy out (default: built once by
#                  tools/oauth2-proxy/build.sh into bin/, then reused)
#   BENCH_PORTS    loopback port range for the processes it starts, e.g. 4670-4699
#                  (default: random free ports in 20000-59999)
#   FLOOD_KEYS     invalid keys of the flood run (default 200000; 0 skips it)
#   MISS_KEYS      keys the PostgreSQL cache-miss run cycles through (default 300)
#
# Every process it starts is stopped on exit, however it exits.
set -euo pipefail

cd "$(dirname "$0")/.."
WRK_ARGS=${WRK_ARGS:--t2 -c50 -d10s}
ROUNDS=${ROUNDS:-2}
BENCH_ONLY=${BENCH_ONLY:-all}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}

if ! command -v wrk >/dev/null; then
	echo "load.sh: wrk is not installed; install it with: apt-get install -y wrk" >&2
	exit 1
fi
if ! command -v curl >/dev/null; then
	echo "load.sh: curl is not installed; install it with: apt-get install -y curl" >&2
	exit 1
fi

work=$(mktemp -d)
pids=()
schemas=()
cleanup() {
	local p s
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for s in "${schemas[@]}"; do
		psql -q "$BENCH_PG_URL" -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true
	done
	[ -n "${KEEP_WORK:-}" ] && echo "work dir kept: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }

BENCH_PORTS=${BENCH_PORTS:-20000-59999}
port_lo=${BENCH_PORTS%-*}
port_hi=${BENCH_PORTS#*-}
handed=" "
# free_port: a port of BENCH_PORTS nothing listens on and not handed out
# before in this run (a process may not be listening yet).
free_port() {
	local p tries=0
	while :; do
		p=$((port_lo + RANDOM % (port_hi - port_lo + 1)))
		if [[ $handed != *" $p "* ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			handed+="$p "
			echo "$p"
			return
		fi
		if ((++tries > 1000)); then
			echo "load.sh: no free port in $BENCH_PORTS" >&2
			return 1
		fi
	done
}

# wait_up URL [curl args...]: poll until it answers 2xx; prints
# milliseconds waited.
wait_up() {
	local start now
	start=$(date +%s%N)
	for _ in $(seq 1 1000); do
		if curl -fsS -o /dev/null "$@" 2>/dev/null; then
			now=$(date +%s%N)
			echo $(((now - start) / 1000000))
			return 0
		fi
		sleep 0.01
	done
	echo "load.sh: $1 did not come up" >&2
	return 1
}

# cpu_ticks PID: user+system CPU time of the process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# rss_split PID: anonymous and file-backed resident KiB ("anon file"): the
# file part is the binary's own code and read-only data, clean and shared.
rss_split() { awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {print a, f}' "/proc/$1/status"; }

# sample_rss PID FILE: keep the peak VmRSS (KiB) in FILE until killed.
sample_rss() {
	local peak=0 r
	while kill -0 "$1" 2>/dev/null; do
		r=$(rss_kib "$1")
		if [ "${r:-0}" -gt "$peak" ]; then
			peak=$r
			echo "$peak" >"$2"
		fi
		sleep 0.1
	done
}

# to_ms VALUE: wrk latency (e.g. 512.00us, 1.20ms, 2.00s) in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n = n / 1000
		else if (v ~ /ms$/) n = n
		else if (v ~ /s$/) n = n * 1000
		printf "%.3f", n
	}'
}

results="$work/results.tsv"
: >"$results"

# measure NAME URL PID [wrk -H args...]: one warm-up, one measured run;
# appends "name req/s p50ms p99ms peakRSS cpu-us/req" to the results. Any non-2xx
# answer voids the run unless EXPECT_DENIALS=1; LOAD overrides WRK_ARGS.
measure() {
	local name=$1 url=$2 pid=$3
	shift 3
	local out="$work/wrk-$name.txt" peakf="$work/peak-$name" sampler
	# shellcheck disable=SC2086
	wrk -t2 -c50 -d2s "$@" "$url" >"$work/warm-$name.txt"
	echo 0 >"$peakf"
	sample_rss "$pid" "$peakf" &
	sampler=$!
	local t0 t1
	t0=$(cpu_ticks "$pid")
	# shellcheck disable=SC2086
	wrk ${LOAD:-$WRK_ARGS} --latency "$@" "$url" >"$out"
	t1=$(cpu_ticks "$pid")
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	if [ -z "${EXPECT_DENIALS:-}" ] && grep -q 'Non-2xx or 3xx responses' "$out"; then
		echo "load.sh: $name: some responses were not 2xx; the figure is void:" >&2
		cat "$out" >&2
		exit 1
	fi
	local rps p50 p99 n cpu
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	n=$(awk '/ requests in / {print $1}' "$out")
	# Server CPU per request: less sensitive to other work on the machine
	# than req/s, and the direct measure of what Keygate adds.
	cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$p50" "$p99" "$(cat "$peakf")" "$cpu" >>"$results"
	# Responses wrk read to the end, warm-up included.
	echo $(($(awk '/ requests in / {print $1}' "$work/warm-$name.txt") + n)) >"$work/completed-$name"
	printf '   %-26s %9s req/s  p50 %7s ms  p99 %8s ms  server CPU %6s us/req\n' "$name" "$rps" "$p50" "$p99" "$cpu" >&2
}

log "building"
if [ -n "${BENCH_KEYGATE_BIN:-}" ]; then
	cp "$BENCH_KEYGATE_BIN" "$work/keygate"
else
	go build -o "$work/keygate" ./cmd/keygate
fi
go build -o "$work/bare" ./bench/bare
go build -o "$work/readyclock" ./bench/readyclock
go build -o "$work/oidcop" ./bench/oidcop
BENCH_O2P=${BENCH_O2P:-build}
if [ "$BENCH_O2P" != skip ] && [ "$BENCH_ONLY" != metered ]; then
	bash tools/oauth2-proxy/build.sh
	cp bin/oauth2-proxy "$work/oauth2-proxy"
fi
go build -o "$work/keygate-nocache" ./bench/keygate-nocache
go build -o "$work/fakellm" ./bench/fakellm

master="sk-bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# start_keygate NAME [ENV=...]: starts the binary (with the arguments in
# kg_args); sets kg_pid, kg_url, kg_ready_ms.
kg_args=()
start_keygate() {
	local name=$1 port
	shift
	port=$(free_port)
	mkdir -p "$work/data-$name"
	local t0
	t0=$(date +%s%N)
	# Default log level, as deployed: denials are logged, successes not.
	env LITELLM_MASTER_KEY="$master" KEYGATE_ADDR="127.0.0.1:$port" KEYGATE_DATA_DIR="$work/data-$name" \
		"$@" "$work/keygate" "${kg_args[@]}" >"$work/keygate-$name.log" 2>&1 &
	kg_pid=$!
	pids+=("$kg_pid")
	kg_url="http://127.0.0.1:$port"
	# bench/readyclock polls every millisecond from inside one process; a
	# curl-and-sleep loop would add its own 10-20 ms.
	kg_ready_ms=$("$work/readyclock" "$t0" "$kg_url/health/readiness")
	# CPU the process used to get there: unlike the wall time, hardly
	# affected by other work on the machine.
	kg_ready_cpu_ms=$(($(cpu_ticks "$kg_pid") * 1000 / CLK_TCK))
}

stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# new_key URL [USER]: a user allowed gpt-4o and its first key.
new_key() {
	local resp
	resp=$(curl -fsS -H "Authorization: Bearer $master" -H 'Content-Type: application/json' \
		-d "{\"user_id\":\"${2:-bench-$RANDOM}\",\"user_role\":\"internal_user\",\"models\":[\"gpt-4o\"]}" "$1/user/new")
	echo "$resp" | grep -o '"key":"sk-[^"]*"' | head -n1 | cut -d'"' -f4
}

log "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), wrk $WRK_ARGS"
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
C1="-t1 -c1 -d5s" # one connection: latency without queueing

pg_reachable() {
	[ "$BENCH_PG_URL" != skip ] && command -v psql >/dev/null && psql -q "$BENCH_PG_URL" -c 'SELECT 1' >/dev/null 2>&1
}

# new_schema: a fresh schema on BENCH_PG_URL (dropped at exit); sets pg_url.
new_schema() {
	schema="kgbench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	schemas+=("$schema")
	psql -q "$BENCH_PG_URL" -c "CREATE SCHEMA $schema" >/dev/null
	case $BENCH_PG_URL in *\?*) pg_url="$BENCH_PG_URL&search_path=$schema" ;; *) pg_url="$BENCH_PG_URL?search_path=$schema" ;; esac
}

if [ "$BENCH_ONLY" != metered ]; then
bare_port=$(free_port)
"$work/bare" "$bare_port" &
bare_pid=$!
pids+=("$bare_pid")
wait_up "http://127.0.0.1:$bare_port/" >/dev/null

log "Keygate on SQLite"
start_keygate sqlite
log "   ready in ${kg_ready_ms} ms (process start to the first 200 of /health/readiness)"
echo "$kg_ready_ms $kg_ready_cpu_ms" >"$work/ready-sqlite"
bench_user="bench-$RANDOM"
key=$(new_key "$kg_url" "$bench_user")
[ -n "$key" ] || { echo "load.sh: could not create a key" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$kg_url/auth/verify")
[ "$code" = 200 ] || { echo "load.sh: /auth/verify answered $code for a fresh key" >&2; exit 1; }
sleep 1
echo "$(rss_kib "$kg_pid")" >"$work/idle-sqlite"
rss_split "$kg_pid" >"$work/idle-split-sqlite"

# A session JWT of the same user: a password, then /v2/login.
curl -fsS -o /dev/null -H "Authorization: Bearer $master" -H 'Content-Type: application/json' \
	-d "{\"user_id\":\"$bench_user\",\"password\":\"bench-password-1\"}" "$kg_url/user/update"
jwt=$(curl -fsS -H 'Content-Type: application/json' -d "{\"username\":\"$bench_user\",\"password\":\"bench-password-1\"}" "$kg_url/v2/login" |
	grep -o '"token":"[^"]*"' | cut -d'"' -f4)
[ -n "$jwt" ] || { echo "load.sh: /v2/login gave no token" >&2; exit 1; }
for h in "Authorization: Bearer $jwt" "Cookie: keygate_session=$jwt"; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "$h" "$kg_url/auth/verify")
	[ "$code" = 200 ] || { echo "load.sh: /auth/verify answered $code for a session token (${h%%:*})" >&2; exit 1; }
done

# The SHA-256 + map handler (bench/bare with a key): the least a key
# verifier does.
shamap_port=$(free_port)
"$work/bare" "$shamap_port" "$key" &
shamap_pid=$!
pids+=("$shamap_pid")
wait_up "http://127.0.0.1:$shamap_port/" -H "Authorization: Bearer $key" >/dev/null

# oauth2-proxy, logged in through the tests' OpenID provider
# (bench/oidcop): its /oauth2/auth with a valid session cookie is what a
# deployment would otherwise put in front of the LLM proxy. Request
# logging is off, as Keygate logs no successful verification.
if [ -x "$work/oauth2-proxy" ]; then
	o2p_port=$(free_port)
	op_port=$(free_port)
	"$work/oidcop" serve "127.0.0.1:$op_port" "http://127.0.0.1:$o2p_port/oauth2/callback" 2>"$work/oidcop.log" &
	pids+=("$!")
	wait_up "http://127.0.0.1:$op_port/.well-known/openid-configuration" >/dev/null
	"$work/oauth2-proxy" --http-address="127.0.0.1:$o2p_port" --provider=oidc \
		--oidc-issuer-url="http://127.0.0.1:$op_port" --client-id=keygate --client-secret=keygate-secret \
		--redirect-url="http://127.0.0.1:$o2p_port/oauth2/callback" --code-challenge-method=S256 \
		--email-domain='*' --upstream=static://200 --skip-provider-button --request-logging=false \
		--cookie-secure=false --cookie-secret="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
		>"$work/oauth2-proxy.log" 2>&1 &
	o2p_pid=$!
	pids+=("$o2p_pid")
	wait_up "http://127.0.0.1:$o2p_port/ping" >/dev/null
	o2p_cookie=$("$work/oidcop" login "http://127.0.0.1:$o2p_port/oauth2/start?rd=%2F")
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $o2p_cookie" "http://127.0.0.1:$o2p_port/oauth2/auth")
	[ "$code" = 202 ] || { echo "load.sh: oauth2-proxy /oauth2/auth answered $code with its own cookie" >&2; exit 1; }
fi

for r in $(seq 1 "$ROUNDS"); do
	measure "bare#$r" "http://127.0.0.1:$bare_port/" "$bare_pid"
	measure "sha-map#$r" "http://127.0.0.1:$shamap_port/" "$shamap_pid" -H "Authorization: Bearer $key"
	measure "verify-sqlite-cached#$r" "$kg_url/auth/verify" "$kg_pid" -H "Authorization: Bearer $key"
	# bare again, sent the session token: what reading the ~500-byte
	# header costs net/http alone, the reference for the JWT runs.
	measure "bare-jwt-header#$r" "http://127.0.0.1:$bare_port/" "$bare_pid" -H "Authorization: Bearer $jwt"
	measure "verify-sqlite-jwt-bearer#$r" "$kg_url/auth/verify" "$kg_pid" -H "Authorization: Bearer $jwt"
	measure "verify-sqlite-jwt-cookie#$r" "$kg_url/auth/verify" "$kg_pid" -H "Cookie: keygate_session=$jwt"
	if [ -n "${o2p_pid:-}" ]; then
		measure "oauth2-proxy#$r" "http://127.0.0.1:$o2p_port/oauth2/auth" "$o2p_pid" -H "Cookie: $o2p_cookie"
	fi
done
EXPECT_DENIALS=1 measure "verify-sqlite-no-key-401" "$kg_url/auth/verify" "$kg_pid"
# An unknown key: looked up once, then answered from the negative cache.
EXPECT_DENIALS=1 measure "verify-sqlite-unknown-key-401" "$kg_url/auth/verify" "$kg_pid" \
	-H "Authorization: Bearer sk-bench-unknown-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
LOAD=$C1 measure "bare-c1" "http://127.0.0.1:$bare_port/" "$bare_pid"
LOAD=$C1 measure "verify-sqlite-cached-c1" "$kg_url/auth/verify" "$kg_pid" -H "Authorization: Bearer $key"

# Invalid-key flood (issue 12): at least FLOOD_KEYS distinct random keys,
# then one request with the valid key must be a cache hit (no database
# lookup), and the peak RSS over the flood is recorded.
FLOOD_KEYS=${FLOOD_KEYS:-200000}
if [ "$FLOOD_KEYS" -gt 0 ]; then
	log "flood: $FLOOD_KEYS distinct invalid keys"
	cat >"$work/flood.lua" <<'LUA'
local n = 0
local tag
init = function(args) tag = string.format("%x", math.random(0, 0x7fffffff)) end
request = function()
	n = n + 1
	return wrk.format(nil, nil, {["Authorization"] = "Bearer sk-flood-" .. tag .. "-" .. n .. "-" .. math.random(0, 0x7fffffff)})
end
LUA
	miss_count() { curl -fsS "$kg_url/metrics" | awk '/^keygate_auth_cache_misses_total\{cache="api_key"\}/ {printf "%d", $2}'; }
	echo 0 >"$work/peak-flood"
	sample_rss "$kg_pid" "$work/peak-flood" &
	flood_sampler=$!
	# Answers live 30 s, so before each 10 s chunk of flood the valid key's
	# answer is renewed (a write to the key drops it; the next request
	# loads it), and the request after the chunk must be a cache hit
	# however many invalid keys came between.
	sent=0 chunks=0 evicted=0
	while [ "$sent" -lt "$FLOOD_KEYS" ]; do
		curl -fsS -o /dev/null -H "Authorization: Bearer $master" -H 'Content-Type: application/json' \
			-d "{\"key\":\"$key\",\"metadata\":{\"flood_chunk\":$chunks}}" "$kg_url/key/update"
		curl -s -o /dev/null -H "Authorization: Bearer $key" "$kg_url/auth/verify"
		wrk -t2 -c50 -d10s -s "$work/flood.lua" "$kg_url/auth/verify" >"$work/wrk-flood.txt"
		after=$(miss_count)
		code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$kg_url/auth/verify")
		flood=$(awk '/ requests in / {print $1}' "$work/wrk-flood.txt")
		misses=$(($(miss_count) - after))
		[ "$misses" -eq 0 ] || evicted=$((evicted + 1))
		sent=$((sent + flood))
		chunks=$((chunks + 1))
	done
	kill "$flood_sampler" 2>/dev/null || true
	wait "$flood_sampler" 2>/dev/null || true
	printf 'flood\t%s\t%s\t%s\t%s\t%s\n' "$sent" "$code" "$evicted" "$(cat "$work/peak-flood")" "$chunks" >"$work/flood.tsv"
	log "   $sent invalid keys sent in $chunks chunks; the valid key was looked up again after $evicted of them; last answer $code; peak RSS $(awk '{printf "%.1f", $1 / 1024}' "$work/peak-flood") MiB"
fi
stop "$kg_pid"
# A restart on the same data directory (no migrations, no key to create).
start_keygate sqlite
echo "$kg_ready_ms $kg_ready_cpu_ms" >"$work/ready-sqlite-restart"
stop "$kg_pid"

if pg_reachable; then
	new_schema

	log "Keygate on PostgreSQL (schema $schema)"
	start_keygate pg DATABASE_URL="$pg_url"
	pg_user="bench-pg-$RANDOM"
	pgkey=$(new_key "$kg_url" "$pg_user")
	curl -fsS -o /dev/null -H "Authorization: Bearer $pgkey" "$kg_url/auth/verify"
	sleep 1
	echo "$(rss_kib "$kg_pid")" >"$work/idle-pg"
	measure "verify-pg-cached" "$kg_url/auth/verify" "$kg_pid" -H "Authorization: Bearer $pgkey"
	# MISS_KEYS keys of the same user for the cache-miss run: concurrent
	# misses for one key share one load (singleflight), so with one key
	# the -c50 figure would count shared loads, not misses. Each wrk
	# thread walks the list from its own half, so the keys in flight at
	# any moment are distinct.
	MISS_KEYS=${MISS_KEYS:-300}
	{
		echo 'local keys = {'
		for _ in $(seq 1 "$MISS_KEYS"); do
			curl -fsS -H "Authorization: Bearer $master" -H 'Content-Type: application/json' \
				-d "{\"user_id\":\"$pg_user\"}" "$kg_url/key/generate" | grep -o '"key":"sk-[^"]*"' | cut -d'"' -f4 | sed 's/.*/"&",/'
		done
		cat <<'LUA'
}
local threads = 0
function setup(thread)
	thread:set("offset", threads * math.floor(#keys / 2))
	threads = threads + 1
end
local i
function init(args) i = offset end
function request()
	i = i % #keys + 1
	return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. keys[i]})
end
LUA
	} >"$work/miss.lua"
	stop "$kg_pid"

	log "Keygate on PostgreSQL, every request a cache miss (bench/keygate-nocache)"
	port=$(free_port)
	DATABASE_URL="$pg_url" LITELLM_MASTER_KEY="$master" "$work/keygate-nocache" "127.0.0.1:$port" >"$work/nocache.log" 2>&1 &
	nc_pid=$!
	pids+=("$nc_pid")
	wait_up "http://127.0.0.1:$port/health/liveliness" >/dev/null
	sleep 1
	echo "$(rss_kib "$nc_pid")" >"$work/idle-pg-miss"
	measure "verify-pg-miss" "http://127.0.0.1:$port/auth/verify" "$nc_pid" -s "$work/miss.lua"
	LOAD=$C1 measure "verify-pg-miss-c1" "http://127.0.0.1:$port/auth/verify" "$nc_pid" -H "Authorization: Bearer $pgkey"
	stop "$nc_pid"
else
	log "PostgreSQL at BENCH_PG_URL not reachable (or skipped): no PostgreSQL figures"
fi

fi # BENCH_ONLY != metered

if [ "$BENCH_ONLY" != verify ]; then

# ---- Metered forwarding -------------------------------------------------
# Keygate in front of bench/fakellm, every request priced and recorded
# (spend row plus key, user, team and membership totals). One answer costs
# 20 completion tokens × 48.828125 USD per million = 2^-10 USD exactly, so
# the totals must equal the number of answers × 2^-10 to the last bit.

llm_port=$(free_port)
"$work/fakellm" "$llm_port" &
llm_pid=$!
pids+=("$llm_pid")
wait_up "http://127.0.0.1:$llm_port/count" >/dev/null
cat >"$work/prices.yaml" <<'YAML'
model_prices:
  gpt-4o: {input_per_million: 0, output_per_million: 48.828125}
YAML
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
LUA

admin_post() {
	curl -fsS -H "Authorization: Bearer $master" -H 'Content-Type: application/json' -d "$2" "$1$3"
}

# sql DB QUERY: run QUERY on the run's database: an SQLite file, or
# "pg:SCHEMA" on BENCH_PG_URL (psql takes no search_path in a URL).
sql() {
	case $1 in
	pg:*) PGOPTIONS="-c search_path=${1#pg:}" psql -qAt -F ' ' "$BENCH_PG_URL" -c "$2" ;;
	*) sqlite3 -separator ' ' "$1" "$2" ;;
	esac
}

# metered NAME DB [ENV=...]: one metered-forwarding run and its accounting.
metered() {
	local name=$1 db=$2 key before answered completed want got
	shift 2
	kg_args=(--config "$work/prices.yaml")
	start_keygate "$name" KEYGATE_UPSTREAM_URL="http://127.0.0.1:$llm_port" "$@"
	kg_args=()
	admin_post "$kg_url" '{"team_id":"bench-team"}' /team/new >/dev/null
	admin_post "$kg_url" '{"user_id":"bench-metered","user_role":"internal_user","auto_create_key":false,"teams":["bench-team"]}' /user/new >/dev/null
	key=$(admin_post "$kg_url" '{"user_id":"bench-metered","team_id":"bench-team","models":["gpt-4o"]}' /key/generate |
		grep -o '"key":"sk-[^"]*"' | cut -d'"' -f4)
	[ -n "$key" ] || { echo "load.sh: $name: could not create a key" >&2; exit 1; }
	before=$(curl -fsS "http://127.0.0.1:$llm_port/count")
	measure "$name" "$kg_url/v1/chat/completions" "$kg_pid" -s "$work/post.lua" -H "Authorization: Bearer $key"
	# Stop Keygate (SIGTERM drains and flushes the spend queue), then
	# check the books in the database itself.
	stop "$kg_pid"
	answered=$(($(curl -fsS "http://127.0.0.1:$llm_port/count") - before))
	completed=$(cat "$work/completed-$name")
	got=$(sql "$db" "SELECT (SELECT count(*) FROM spend_logs), (SELECT sum(spend) FROM spend_logs) * 1024,
		(SELECT spend FROM api_keys) * 1024, (SELECT spend FROM users WHERE id = 'bench-metered') * 1024,
		(SELECT spend FROM teams WHERE id = 'bench-team') * 1024,
		(SELECT spend FROM memberships WHERE team_id = 'bench-team' AND user_id = 'bench-metered') * 1024")
	read -r rows logsum keysum usersum teamsum membersum <<<"$got"
	printf '   %-26s %s answers read by wrk, %s sent by the upstream; %s spend rows; sum(rows), key, user, team, membership spend = %s %s %s %s %s × 2^-10 USD\n' \
		"$name" "$completed" "$answered" "$rows" "$logsum" "$keysum" "$usersum" "$teamsum" "$membersum" >&2
	# Every answer a client read is billed, none twice (wrk cuts the
	# requests in flight when it stops: the upstream may have answered
	# those, the client never got them, and they may or may not be
	# billed), and the totals add up to the rows, exactly.
	if [ "$rows" -lt "$completed" ] || [ "$rows" -gt "$answered" ]; then
		echo "load.sh: $name: $rows spend rows for $completed answers read ($answered sent)" >&2
		exit 1
	fi
	local v
	for v in "$logsum" "$keysum" "$usersum" "$teamsum" "$membersum"; do
		if ! awk -v a="$v" -v b="$rows" 'BEGIN {exit !(a + 0 == b + 0)}'; then
			echo "load.sh: $name: accounting is off: $rows rows of 2^-10 USD but $got" >&2
			exit 1
		fi
	done
	want=$(awk -v n="$rows" 'BEGIN {printf "%.10f", n / 1024}')
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$completed" "$rows" "$answered" "$want" >>"$work/accounting.tsv"
}

log "Metered forwarding on SQLite"
metered metered-sqlite "$work/data-metered-sqlite/keygate.db"
if pg_reachable; then
	log "Metered forwarding on PostgreSQL"
	new_schema
	metered metered-pg "pg:$schema" DATABASE_URL="$pg_url"
fi
fi # BENCH_ONLY != verify

echo
echo "| run | req/s | p50 ms | p99 ms | server CPU µs/req | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|"
awk -F'\t' '{printf "| %s | %.0f | %s | %s | %s | %.1f |\n", $1, $2, $3, $4, $6, $5 / 1024}' "$results"
echo
if [ -f "$work/accounting.tsv" ]; then
	awk -F'\t' '{printf "%s: accounting exact: %d spend rows (%d answers read by wrk, %d sent upstream) = sum(rows) = key = user = team = membership spend = %s USD\n", $1, $3, $2, $4, $5}' "$work/accounting.tsv"
fi
if [ "$BENCH_ONLY" = metered ]; then
	log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi
# Ratios within each round (the figures of one round were measured back to
# back, so they share the machine's load).
echo
echo "| round | run | req/s ÷ bare | server CPU/req ÷ bare | ÷ oauth2-proxy req/s | target |"
echo "|---|---|---:|---:|---:|---|"
for r in $(seq 1 "$ROUNDS"); do
	awk -F'\t' -v r="$r" '
		{n = $1; if (sub("#" r "$", "", n)) {rps[n] = $2; cpu[n] = $6; order[++k] = n}}
		END {
			for (i = 1; i <= k; i++) {
				n = order[i]
				if (n == "bare") continue
				o = ("oauth2-proxy" in rps && n != "oauth2-proxy") ? sprintf("%.2f", rps[n] / rps["oauth2-proxy"]) : "—"
				t = (n ~ /^verify/) ? ">= 0.80 req/s, <= 1.25 CPU" : ""
				printf "| %d | %s | %.2f | %.2f | %s | %s |\n", r, n, rps[n] / rps["bare"], cpu[n] / cpu["bare"], o, t
			}
		}' "$results"
done
echo
awk -F'\t' '$1 == "verify-sqlite-no-key-401" {printf "401 path (no key): %.0f req/s, server CPU %s us/req\n", $2, $6}
	$1 == "verify-sqlite-unknown-key-401" {printf "401 path (unknown key): %.0f req/s, server CPU %s us/req\n", $2, $6}' "$results"
awk -F'\t' '$1 == "verify-pg-miss" {printf "cache miss on PostgreSQL: server CPU %s us per miss (target <= 150), p50 %s ms at '"$WRK_ARGS"'\n", $6, $3}
	$1 == "verify-pg-miss-c1" {printf "cache miss on PostgreSQL: p50 %s ms on one connection (target <= 0.4)\n", $3}' "$results"
printf 'Keygate (SQLite) ready in %s ms from a fresh data directory (target <= 150; %s ms CPU), %s ms on restart (%s ms CPU); RSS idle %.1f MiB (target <= 30: %s)' \
	$(cat "$work/ready-sqlite") $(cat "$work/ready-sqlite-restart") "$(awk '{print $1 / 1024}' "$work/idle-sqlite")" \
	"$(awk '{printf "%.1f MiB anonymous, %.1f MiB of the binary mapped", $1 / 1024, $2 / 1024}' "$work/idle-split-sqlite")"
awk -F'\t' '$1 ~ /^verify-sqlite/ && $5 > m {m = $5} END {printf ", peak under load %.1f MiB (target <= 150)\n", m / 1024}' "$results"
if [ -f "$work/flood.tsv" ]; then
	awk -F'\t' '{printf "flood: %d distinct invalid keys in %d chunks of 10 s; the valid key, cached before each chunk, needed a database lookup after %d of them (target 0); last answer %s; peak RSS %.1f MiB (target <= 64)\n", $2, $6, $4, $3, $5 / 1024}' "$work/flood.tsv"
fi
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -f "$work/idle-pg" ]; then
	printf 'Keygate (PostgreSQL) RSS idle %.1f MiB\n' "$(awk '{print $1 / 1024}' "$work/idle-pg")"
fi
