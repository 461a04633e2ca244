#!/usr/bin/env bash
# Compares a UPU node's Redis-protocol listener with redis-server on this
# machine, side by side in the same run: redis-benchmark -c 50 -d 100, SET and
# GET at pipeline 1 and 16, each server measured in turn ROUNDS times. Prints
# requests per second and the ratio UPU/redis; the ratio is what to compare
# across runs (the absolute figures depend on the machine's load). It also
# prints each server's CPU time per request (user + system, from /proc),
# which a busy machine disturbs far less than the throughput, and at the end
# the medians over the rounds.
#
#   scripts/bench-redis.sh               # 200k requests per test, 1 round
#   REQUESTS=100000 ROUNDS=3 scripts/bench-redis.sh
#   BASE=main~5 scripts/bench-redis.sh   # also a node built from that revision
#
# With BASE, a second node built from that git revision runs beside the
# first, measured in the same rounds, so that a change is judged against
# the code before it under the same load.
#
# Needs redis-server and redis-benchmark (apt-get install redis-server
# redis-tools). Everything it starts listens on 127.0.0.1 and is stopped by
# PID on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS="${REQUESTS:-200000}"
ROUNDS="${ROUNDS:-1}"
for tool in redis-server redis-benchmark; do
	command -v "$tool" >/dev/null || { echo "bench-redis: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 2; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
wait_port() {
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench-redis: nothing listens on port $1" >&2
	return 1
}

go build -o "$work/upu" ./cmd/upu
BASE="${BASE:-}"
if [[ -n "$BASE" ]]; then
	mkdir "$work/base-src"
	git archive "$BASE" | tar -x -C "$work/base-src"
	(cd "$work/base-src" && go build -o "$work/upu-base" ./cmd/upu)
fi

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --appendonly yes \
	--appendfsync everysec --save '' --daemonize no --logfile "$work/redis.log" &
pids+=($!)

# start_node BINARY NAME RESP_PORT: a node serving RESP on that port.
start_node() {
	"$1" serve --data-dir "$work/$2-data" --addr "127.0.0.1:$(free_port)" \
		--gossip-addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$3" \
		>"$work/$2.log" 2>&1 &
	pids+=($!)
	wait_port "$3"
}
redis_pid="${pids[0]}"
upu_resp_port="$(free_port)"
start_node "$work/upu" upu "$upu_resp_port"
upu_pid="${pids[-1]}"
if [[ -n "$BASE" ]]; then
	base_resp_port="$(free_port)"
	start_node "$work/upu-base" base "$base_resp_port"
	base_pid="${pids[-1]}"
fi
tck="$(getconf CLK_TCK)"

# cpu PID: the process's CPU time so far (user + system), in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_port "$redis_port"

# measure PORT PID TEST PIPELINE: requests per second of one
# redis-benchmark test, and the server's CPU microseconds per request.
measure() {
	local before after r
	before="$(cpu "$2")"
	r="$(redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -d 100 -n "$REQUESTS" -r 100000 \
		-t "$3" -P "$4" --csv 2>/dev/null | awk -F'"' 'NR>1 && $2 != "" {print $4; exit}')"
	after="$(cpu "$2")"
	echo "$r $(awk -v d=$((after - before)) -v t="$tck" -v n="$REQUESTS" 'BEGIN{printf "%.2f", d / t * 1e6 / n}')"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
if [[ -n "$BASE" ]]; then
	printf '%-10s %10s %10s %10s %10s %10s %9s %9s %9s\n' test upu base redis upu/redis base/redis 'upu-us' 'base-us' 'redis-us'
else
	printf '%-10s %10s %10s %8s %9s %9s\n' test upu redis ratio 'upu-us' 'redis-us'
fi
: >"$work/results"
for round in $(seq 1 "$ROUNDS"); do
	for p in 1 16; do
		for t in set get; do
			read -r u ucpu <<<"$(measure "$upu_resp_port" "$upu_pid" "$t" "$p")"
			read -r r rcpu <<<"$(measure "$redis_port" "$redis_pid" "$t" "$p")"
			name="${t^^}-P$p"
			if [[ -n "$BASE" ]]; then
				read -r b bcpu <<<"$(measure "$base_resp_port" "$base_pid" "$t" "$p")"
				printf '%-10s %10.0f %10.0f %10.0f %10s %10s %9s %9s %9s\n' "$name" "$u" "$b" "$r" "$(ratio "$u" "$r")" "$(ratio "$b" "$r")" "$ucpu" "$bcpu" "$rcpu"
				echo "$name $(ratio "$u" "$r") $(ratio "$b" "$r") $ucpu $bcpu $rcpu" >>"$work/results"
			else
				printf '%-10s %10.0f %10.0f %8s %9s %9s\n' "$name" "$u" "$r" "$(ratio "$u" "$r")" "$ucpu" "$rcpu"
				echo "$name $(ratio "$u" "$r") - $ucpu - $rcpu" >>"$work/results"
			fi
		done
	done
	if [[ "$round" -lt "$ROUNDS" ]]; then echo; fi
done

# Medians over the rounds: throughput ratios, and CPU microseconds per
# request.
echo
printf '%-10s %10s %10s %9s %9s %9s   (medians of %d rounds)\n' test upu/redis base/redis 'upu-us' 'base-us' 'redis-us' "$ROUNDS"
for name in SET-P1 GET-P1 SET-P16 GET-P16; do
	row="$name"
	for col in 2 3 4 5 6; do
		row="$row $(awk -v n="$name" -v c="$col" '$1 == n {print $c}' "$work/results" | sort -g |
			awk '{v[NR] = $1} END {if (NR == 0 || v[1] == "-") {print "-"; exit} m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m}')"
	done
	printf '%-10s %10s %10s %9s %9s %9s\n' $row
done
