#!/usr/bin/env bash
# End-to-end checks of a running Aster through its four listeners:
#   redis            (REDIS_PORT)            with redis-cli
#   redis_cluster    (CLUSTER_PORT)          with redis-cli
#   memcache         (MEMCACHE_PORT)         text protocol over bash's /dev/tcp
#   memcache_binary  (MEMCACHE_BINARY_PORT)  binary protocol over bash's /dev/tcp
# Every check compares the exact reply; the first mismatch prints what was expected and
# what came back and exits 1. Needs bash, redis-cli, coreutils (timeout, od, tr).
#
# compose.yaml runs it in the integration-tests service; tests/integration_script_test.ts
# runs it against a local Aster. Settings (environment):
#   ASTER_HOST            host of the proxy                        default aster
#   REDIS_PORT            cache_type = "redis" listener            default 9001
#   CLUSTER_PORT          cache_type = "redis_cluster" listener    default 9002
#   MEMCACHE_PORT         cache_type = "memcache" listener         default 9003
#   MEMCACHE_BINARY_PORT  cache_type = "memcache_binary" listener  default 9004
#   WAIT_SECONDS          how long each listener may take to get ready  default 60
#   IO_TIMEOUT            longest wait for one exchange, seconds   default 5
#   RUN_ID                ends every key written, as NAME:RUN_ID (no spaces, no braces)
#                         default aster-it-<epoch>-<pid>, so runs never collide
# Keys differ in their first bytes: twemproxy's fnv1a_64 (the ring's default hash) puts
# keys that differ only in their last bytes next to each other, on one server.
# The redis_cluster checks expect a cluster whose three masters own the slots of the hash
# tags {a} (15495), {b} (3300) and {c} (7365), as `redis-cli --cluster create` makes them.

set -u

ASTER_HOST=${ASTER_HOST:-aster}
REDIS_PORT=${REDIS_PORT:-9001}
CLUSTER_PORT=${CLUSTER_PORT:-9002}
MEMCACHE_PORT=${MEMCACHE_PORT:-9003}
MEMCACHE_BINARY_PORT=${MEMCACHE_BINARY_PORT:-9004}
WAIT_SECONDS=${WAIT_SECONDS:-60}
IO_TIMEOUT=${IO_TIMEOUT:-5}
RUN_ID=${RUN_ID:-aster-it-$(date +%s)-$$}

R=$RUN_ID
PASSED=0

# --- reporting ---------------------------------------------------------------------------

fail() { # what details
  printf 'not ok %d - %s\n%s\n' "$((PASSED + 1))" "$1" "$2"
  printf 'FAILED after %d passed checks\n' "$PASSED"
  exit 1
}

pass() { # what
  PASSED=$((PASSED + 1))
  printf 'ok %d - %s\n' "$PASSED" "$1"
}

# verdict what expected got context: passes when got is exactly expected, or when
# MODE=glob, when got matches the expected glob pattern
verdict() {
  local matched=no
  if [ "${MODE:-exact}" = glob ]; then
    # shellcheck disable=SC2053 # the pattern is meant unquoted
    [[ $3 == $2 ]] && matched=yes
  elif [ "$3" = "$2" ]; then
    matched=yes
  fi
  if [ "$matched" = yes ]; then
    pass "$1"
  else
    fail "$1" "  sent:     $4
  expected: $(printf '%s' "$2" | sed '2,$s/^/            /')
  got:      $(printf '%s' "$3" | sed '2,$s/^/            /')"
  fi
}

# wait_ready what probe...: runs the probe until it succeeds or WAIT_SECONDS pass
wait_ready() {
  local what=$1 deadline=$((SECONDS + WAIT_SECONDS))
  shift
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "$what" "  not ready within ${WAIT_SECONDS} s (last probe: ${LAST_PROBE:-nothing})"
    fi
    sleep 1
  done
  pass "$what"
}

# --- redis -------------------------------------------------------------------------------

# rc port args...: one command through redis-cli, formatted replies ("(integer) 1", "(nil)")
rc() {
  local port=$1
  shift
  timeout "$IO_TIMEOUT" redis-cli -h "$ASTER_HOST" -p "$port" --no-raw "$@" 2>&1 ||
    { local code=$?; [ "$code" -eq 124 ] && printf '(no reply within %s s)' "$IO_TIMEOUT"; }
}

# expect port what expected args...: the reply of one command must be exactly expected
expect() {
  local port=$1 what=$2 expected=$3
  shift 3
  verdict "$what" "$expected" "$(rc "$port" "$@")" "$*"
}

# lines item...: the items as redis-cli prints an array: one a line, " 9) ..." numbered and
# right-aligned to the widest number
lines() {
  local i=0 width=${##} item
  for item in "$@"; do
    i=$((i + 1))
    [ "$i" -gt 1 ] && printf '\n'
    printf '%*d) %s' "$width" "$i" "$item"
  done
}

probe_redis() { # port probe-args... expected-reply-last
  local port=$1 expected=${*: -1}
  LAST_PROBE=$(rc "$port" "${@:2:$#-2}")
  [ "$LAST_PROBE" = "$expected" ]
}

# redis_suite label port key...: strings, multi-key split and merge, counters, hashes and
# lists over twelve keys that the caller spreads over shards or slots, then cleans up.
# The keys after the twelve: a counter, a hash and a list key.
redis_suite() {
  local label=$1 port=$2
  shift 2
  local keys=("${@:1:12}") counter=${13} hash=${14} list=${15}
  local i pairs=() values=()
  for i in "${!keys[@]}"; do
    pairs+=("${keys[i]}" "v$i")
    values+=("\"v$i\"")
  done
  local missing="missing:$R"

  expect "$port" "$label: PING" "PONG" PING
  expect "$port" "$label: SET one key" "OK" SET "${keys[0]}" "hello world"
  expect "$port" "$label: GET it back" '"hello world"' GET "${keys[0]}"
  expect "$port" "$label: GET a missing key" "(nil)" GET "$missing"
  expect "$port" "$label: MSET of 12 keys" "OK" MSET "${pairs[@]}"
  expect "$port" "$label: MGET of 12 keys and a missing one, in request order" \
    "$(lines "${values[@]}" "(nil)")" MGET "${keys[@]}" "$missing"
  expect "$port" "$label: EXISTS sums over all of them" "(integer) 12" \
    EXISTS "${keys[@]}" "$missing"
  expect "$port" "$label: DEL of 6 keys and a missing one" "(integer) 6" \
    DEL "${keys[@]:0:6}" "$missing"
  expect "$port" "$label: MGET after DEL" "$(lines "(nil)" "(nil)" '"v6"' '"v11"')" \
    MGET "${keys[0]}" "${keys[5]}" "${keys[6]}" "${keys[11]}"
  expect "$port" "$label: INCR a new counter" "(integer) 1" INCR "$counter"
  expect "$port" "$label: INCR again" "(integer) 2" INCR "$counter"
  expect "$port" "$label: INCRBY 40" "(integer) 42" INCRBY "$counter" 40
  expect "$port" "$label: GET the counter" '"42"' GET "$counter"
  expect "$port" "$label: HSET two fields" "(integer) 2" HSET "$hash" f1 one f2 two
  expect "$port" "$label: HGET" '"two"' HGET "$hash" f2
  expect "$port" "$label: HINCRBY a new field" "(integer) 5" HINCRBY "$hash" n 5
  expect "$port" "$label: HGETALL" "$(lines '"f1"' '"one"' '"f2"' '"two"' '"n"' '"5"')" \
    HGETALL "$hash"
  expect "$port" "$label: HDEL" "(integer) 1" HDEL "$hash" f1
  expect "$port" "$label: HLEN" "(integer) 2" HLEN "$hash"
  expect "$port" "$label: RPUSH" "(integer) 3" RPUSH "$list" a b c
  expect "$port" "$label: LPUSH" "(integer) 4" LPUSH "$list" z
  expect "$port" "$label: LRANGE" "$(lines '"z"' '"a"' '"b"' '"c"')" LRANGE "$list" 0 -1
  expect "$port" "$label: LPOP" '"z"' LPOP "$list"
  expect "$port" "$label: LLEN" "(integer) 3" LLEN "$list"
  expect "$port" "$label: DEL of everything written" "(integer) 9" \
    DEL "${keys[@]}" "$counter" "$hash" "$list"
  expect "$port" "$label: nothing left" "(integer) 0" \
    EXISTS "${keys[@]}" "$counter" "$hash" "$list"
}

# --- memcache ----------------------------------------------------------------------------

# exchange port printf-format: opens a connection, writes printf's rendering of the format
# (escapes such as \r, \n and \xHH become bytes), reads until the server closes it (every
# exchange ends with a quit) and prints what came back as hex.
exchange() {
  timeout "$IO_TIMEOUT" bash -c \
    'exec 3<>"/dev/tcp/$0/$1" || exit 1; printf "$2" >&3; cat <&3' \
    "$ASTER_HOST" "$1" "$2" 2>/dev/null | od -An -v -tx1 | tr -d ' \n'
}

# text_exchange port request: a memcache text exchange, the reply with "\r" removed and
# the cas unique of "VALUE key flags bytes cas" lines shown as <cas>
text_exchange() {
  local format=${2//%/%%}
  format=${format//\\/\\\\}
  format=${format//$'\r'/\\r}
  format=${format//$'\n'/\\n}
  hex_text "$(exchange "$1" "$format")" | tr -d '\r' |
    sed -E 's/^(VALUE [^ ]+ [0-9]+ [0-9]+) [0-9]+$/\1 <cas>/'
}

# hex_text hex: the bytes the hex stands for
hex_text() {
  local hex=$1 out="" i
  for ((i = 0; i < ${#hex}; i += 2)); do out+="\\x${hex:i:2}"; done
  printf "$out"
}

# text_hex text: the hex of the text's bytes
text_hex() {
  printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}

# NOTHING: what a check got when the exchange returned no byte at all
NOTHING="(nothing came back: connection refused, or no reply within IO_TIMEOUT s)"

# mc what request expected: the request's lines get "\r\n" and a final quit; the reply
# lines are compared joined with "\n" (MODE=glob: expected is a pattern)
mc() {
  local what=$1 request=$2 expected=$3 got
  local wire=${request//$'\n'/$'\r\n'}$'\r\nquit\r\n'
  got=$(text_exchange "$MEMCACHE_PORT" "$wire")
  verdict "memcache: $what" "$expected" "${got:-$NOTHING}" \
    "$(printf '%s' "$request" | tr '\n' '|')|quit"
}

# probe_memcache: a get of the suite's keys (before it writes them) reaches every server
probe_memcache() {
  local request="get m1:$R m2:$R m3:$R m4:$R m5:$R m6:$R"$'\r\nquit\r\n'
  LAST_PROBE=$(text_exchange "$MEMCACHE_PORT" "$request")
  [ "$LAST_PROBE" = "END" ]
}

memcache_suite() {
  local k=("m1:$R" "m2:$R" "m3:$R" "m4:$R" "m5:$R" "m6:$R") n="mn:$R" i
  local sets="" stored="" values="" dels="" deleted=""
  for i in "${!k[@]}"; do
    sets+="set ${k[i]} $i 0 2"$'\n'"v$i"$'\n'
    stored+="STORED"$'\n'
    values+="VALUE ${k[i]} $i 2"$'\n'"v$i"$'\n'
  done
  for i in "${k[@]:1}" "$n"; do
    dels+="delete $i"$'\n'
    deleted+="DELETED"$'\n'
  done
  MODE=glob mc "version is answered by Aster" "version" "VERSION aster-*"
  mc "set and get one key" "set ${k[0]} 7 0 5"$'\n'"hello"$'\n'"get ${k[0]}" \
    "STORED"$'\n'"VALUE ${k[0]} 7 5"$'\n'"hello"$'\n'"END"
  mc "set of 6 keys" "${sets%$'\n'}" "${stored%$'\n'}"
  mc "get of 6 keys and a missing one, merged in key order" "get ${k[*]} missing:$R" \
    "${values}END"
  mc "gets of 2 keys" "gets ${k[1]} ${k[2]}" \
    "VALUE ${k[1]} 1 2 <cas>"$'\n'"v1"$'\n'"VALUE ${k[2]} 2 2 <cas>"$'\n'"v2"$'\n'"END"
  mc "add of an existing key" "add ${k[0]} 0 0 1"$'\n'"x" "NOT_STORED"
  mc "append and prepend" \
    "append ${k[1]} 0 0 2"$'\n'"-a"$'\n'"prepend ${k[1]} 0 0 2"$'\n'"p-"$'\n'"get ${k[1]}" \
    "STORED"$'\n'"STORED"$'\n'"VALUE ${k[1]} 1 6"$'\n'"p-v1-a"$'\n'"END"
  mc "noreply set gets no reply" "set ${k[2]} 0 0 1 noreply"$'\n'"z"$'\n'"get ${k[2]}" \
    "VALUE ${k[2]} 0 1"$'\n'"z"$'\n'"END"
  mc "incr and decr" \
    "set $n 0 0 2"$'\n'"10"$'\n'"incr $n 32"$'\n'"decr $n 2"$'\n'"get $n" \
    "STORED"$'\n'"42"$'\n'"40"$'\n'"VALUE $n 0 2"$'\n'"40"$'\n'"END"
  mc "delete" "delete ${k[0]}"$'\n'"delete ${k[0]}"$'\n'"get ${k[0]}" \
    "DELETED"$'\n'"NOT_FOUND"$'\n'"END"
  mc "admin commands are refused" "flush_all" \
    "SERVER_ERROR command 'flush_all' is not supported by aster"
  mc "delete of everything written" "${dels%$'\n'}" "${deleted%$'\n'}"
}

# --- memcache binary ---------------------------------------------------------------------

# packet opcode opaque extras-hex key value: one binary request as \xHH escapes
packet() {
  local opcode=$1 opaque=$2 extras=$3 key=$4 value=$5
  local extlen=$((${#extras} / 2)) hex
  hex=$(printf '80%s%04x%02x000000%08x%08x0000000000000000%s%s%s' "$opcode" "${#key}" \
    "$extlen" "$((extlen + ${#key} + ${#value}))" "$opaque" "$extras" \
    "$(text_hex "$key")" "$(text_hex "$value")")
  local out="" i
  for ((i = 0; i < ${#hex}; i += 2)); do out+="\\x${hex:i:2}"; done
  printf '%s' "$out"
}

# responses hex: one line per response packet: opcode status opaque extras key value
# (the cas is left out: memcached picks it)
responses() {
  local hex=$1 pos=0 keylen extlen bodylen body
  while [ $((pos + 48)) -le ${#hex} ]; do
    keylen=$((16#${hex:pos+4:4}))
    extlen=$((16#${hex:pos+8:2}))
    bodylen=$((16#${hex:pos+16:8}))
    body=${hex:pos+48:bodylen*2}
    printf '%s op=%s status=%s opaque=%d extras=%s key=%s value=%s\n' "${hex:pos:2}" \
      "${hex:pos+2:2}" "${hex:pos+12:4}" "$((16#${hex:pos+24:8}))" "${body:0:extlen*2}" \
      "$(hex_text "${body:extlen*2:keylen*2}")" "$(hex_text "${body:(extlen+keylen)*2}")"
    pos=$((pos + 48 + bodylen * 2))
  done
  [ "$pos" -eq ${#hex} ] || printf 'trailing bytes: %s\n' "${hex:pos}"
}

# bin what expected packet...: sends the packets and a QUIT, compares the responses
bin() {
  local what=$1 expected=$2
  shift 2
  local wire got
  wire="$(printf '%s' "$@")$(packet 07 99 "" "" "")"
  got=$(responses "$(exchange "$MEMCACHE_BINARY_PORT" "$wire")")
  verdict "memcache_binary: $what" \
    "$expected"$'\n'"81 op=07 status=0000 opaque=99 extras= key= value=" "${got:-$NOTHING}" \
    "$what, then quit"
}

# probe_binary: quiet gets of the suite's keys (before it writes them) reach every server
# and, all misses, leave only the noop's response
probe_binary() {
  local wire="" i
  for i in 1 2 3 4; do wire+=$(packet 0d "$i" "" "b$i:$R" ""); done
  wire+=$(packet 0a 5 "" "" "")$(packet 07 6 "" "" "")
  LAST_PROBE=$(responses "$(exchange "$MEMCACHE_BINARY_PORT" "$wire")")
  [ "$LAST_PROBE" = "81 op=0a status=0000 opaque=5 extras= key= value="$'\n'"\
81 op=07 status=0000 opaque=6 extras= key= value=" ]
}

binary_suite() {
  local k=("b1:$R" "b2:$R" "b3:$R" "b4:$R") i sets="" hits="" setok=""
  local flags=0000002a expiry=00000000
  for i in "${!k[@]}"; do
    sets+=$(packet 01 "$((i + 1))" "$flags$expiry" "${k[i]}" "value-$i")
    setok+="81 op=01 status=0000 opaque=$((i + 1)) extras= key= value="$'\n'
  done
  MODE=glob bin "version is answered by Aster" \
    "81 op=0b status=0000 opaque=1 extras= key= value=aster-*" \
    "$(packet 0b 1 "" "" "")"
  bin "set 4 keys" "${setok%$'\n'}" "$sets"
  bin "getk of a hit" "81 op=0c status=0000 opaque=7 extras=$flags key=${k[0]} value=value-0" \
    "$(packet 0c 7 "" "${k[0]}" "")"
  bin "get of a miss" "81 op=00 status=0001 opaque=8 extras= key= value=Not found" \
    "$(packet 00 8 "" "missing:$R" "")"
  for i in "${!k[@]}"; do
    hits+="81 op=0d status=0000 opaque=$((20 + i)) extras=$flags key=${k[i]} value=value-$i"$'\n'
  done
  bin "getkq over servers then noop: only the hits, in order" \
    "${hits}81 op=0a status=0000 opaque=30 extras= key= value=" \
    "$(packet 0d 20 "" "${k[0]}" "")" "$(packet 0d 19 "" "missing:$R" "")" \
    "$(packet 0d 21 "" "${k[1]}" "")" "$(packet 0d 22 "" "${k[2]}" "")" \
    "$(packet 0d 23 "" "${k[3]}" "")" "$(packet 0a 30 "" "" "")"
  bin "delete" "81 op=04 status=0000 opaque=40 extras= key= value=" \
    "$(packet 04 40 "" "${k[0]}" "")"
  bin "get after delete" "81 op=00 status=0001 opaque=41 extras= key= value=Not found" \
    "$(packet 00 41 "" "${k[0]}" "")"
  local dels="" delok=""
  for i in 1 2 3; do
    dels+=$(packet 04 "$((50 + i))" "" "${k[i]}" "")
    delok+="81 op=04 status=0000 opaque=$((50 + i)) extras= key= value="$'\n'
  done
  bin "delete everything written" "${delok%$'\n'}" "$dels"
}

# --- main --------------------------------------------------------------------------------

command -v redis-cli >/dev/null || fail "redis-cli is installed" "  not found on PATH"

printf 'aster at %s: redis %s, redis_cluster %s, memcache %s, memcache_binary %s; keys *:%s\n' \
  "$ASTER_HOST" "$REDIS_PORT" "$CLUSTER_PORT" "$MEMCACHE_PORT" "$MEMCACHE_BINARY_PORT" "$R"

# redis: twelve plain keys, spread over the shards by the ketama ring.
keys=()
for i in $(seq 1 12); do keys+=("r$i:$R"); done
wait_ready "redis: every shard answers" probe_redis "$REDIS_PORT" EXISTS "${keys[@]}" \
  "(integer) 0"
redis_suite redis "$REDIS_PORT" "${keys[@]}" "counter:$R" "hash:$R" "list:$R"
expect "$REDIS_PORT" "redis: KEYS is refused by Aster" "(error) ERR command 'keys' is not \
supported by aster: commands over the whole keyspace are not supported \
(see docs/commands.md#refused-commands)" KEYS '*'
expect "$REDIS_PORT" "redis: MSET of hash-tagged keys" "OK" MSET "{t}:1:$R" x "{t}:2:$R" y
expect "$REDIS_PORT" "redis: RENAME within one hash tag" "OK" RENAME "{t}:1:$R" "{t}:3:$R"
expect "$REDIS_PORT" "redis: DEL of the hash-tagged keys" "(integer) 2" \
  DEL "{t}:1:$R" "{t}:2:$R" "{t}:3:$R"

# redis_cluster: keys tagged {a}, {b} and {c}, whose slots are on three different masters.
wait_ready "redis_cluster: the three masters answer" probe_redis "$CLUSTER_PORT" \
  EXISTS "{a}:$R" "{b}:$R" "{c}:$R" "(integer) 0"
keys=()
for i in $(seq 1 12); do
  case $((i % 3)) in
    0) tag=a ;;
    1) tag=b ;;
    *) tag=c ;;
  esac
  keys+=("{$tag}:$i:$R")
done
redis_suite redis_cluster "$CLUSTER_PORT" "${keys[@]}" "{a}:counter:$R" "{b}:hash:$R" \
  "{c}:list:$R"
expect "$CLUSTER_PORT" "redis_cluster: CLUSTER KEYSLOT" "(integer) 15495" \
  CLUSTER KEYSLOT "{a}:x:$R"
expect "$CLUSTER_PORT" "redis_cluster: a multi-key command over two slots is CROSSSLOT" \
  "(error) CROSSSLOT Keys in request don't hash to the same slot" \
  SUNIONSTORE "{a}:s:$R" "{b}:s:$R"
expect "$CLUSTER_PORT" "redis_cluster: SADD" "(integer) 2" SADD "{a}:s1:$R" x y
expect "$CLUSTER_PORT" "redis_cluster: SUNIONSTORE within one slot" "(integer) 2" \
  SUNIONSTORE "{a}:s2:$R" "{a}:s1:$R"
expect "$CLUSTER_PORT" "redis_cluster: DEL of the sets" "(integer) 2" DEL "{a}:s1:$R" "{a}:s2:$R"

# memcache text protocol.
wait_ready "memcache: every server answers" probe_memcache
memcache_suite

# memcache binary protocol.
wait_ready "memcache_binary: every server answers" probe_binary
binary_suite

printf 'all %d checks passed\n' "$PASSED"
