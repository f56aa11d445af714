# Sourced by the scripts in this folder; functions only. A script lists what it reads: `place NAME DEFAULT`
# for a path it reads or writes, `setting NAME --flag` for a driver setting. `run_driver` then starts the
# driver with the script's own flags (the recipe first) and, after them, the flag of every setting the user
# set, so that it wins; a setting not set passes nothing (the recipe's value, else the driver's default,
# stands). EXTRA_ARGS comes last. `--help` prints the script's header and what it reads, and runs nothing;
# any other argument is an error.

script_start() {  # script_start "$0" "$@"
  SCRIPT=$1 HELP=0 FLAGS=() RETRIEVER_SCRIPT_VARS=""
  shift
  if [[ $# == 1 && ( $1 == -h || $1 == --help ) ]]; then
    HELP=1
    sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$SCRIPT"
    echo
    echo "Variables (NAME=value bash $SCRIPT); a setting not set passes nothing: the recipe's value (if" \
      "any), else the driver's default, stands:"
    echo "  EXTRA_ARGS         more driver flags, passed last (python -m retriever.driver.<name> --help lists them)"
  elif (( $# )); then
    echo "error: $(basename "$SCRIPT") takes no arguments (got '$1'): set its variables instead, e.g." \
      "'MAX_STEPS=5 bash $SCRIPT', and put other driver flags in EXTRA_ARGS; --help lists the variables" >&2
    exit 2
  fi
}

place() {  # place NAME DEFAULT "what" [--flag]: a path the script reads or writes, DEFAULT when not set
  (( HELP )) && printf '  %-18s %-30s %s\n' "$1" "(default $2)" "$3"
  [[ -z ${4:-} ]] || RETRIEVER_SCRIPT_VARS+=" $4=$1"  # the driver's errors name the variable beside the flag
  [[ -n ${!1:-} ]] || printf -v "$1" '%s' "$2"
}

setting() {  # setting NAME --flag "what": when NAME is set, --flag NAME's value, after the script's own flags
  (( HELP )) && printf '  %-18s %-30s %s\n' "$1" "$2" "$3"
  RETRIEVER_SCRIPT_VARS+=" $2=$1"  # the driver's errors name the variable beside the flag
  [[ -z ${!1+set} ]] || FLAGS+=("$2" "${!1}")
}

retired() {  # retired NAME "what to write instead": a variable this script no longer reads is an error
  if [[ -n ${!1+set} ]]; then
    echo "error: $1 is set, but $(basename "$SCRIPT") no longer reads it: $2" >&2
    exit 2
  fi
}

run_driver() {  # run_driver NAME FLAG...: python -m retriever.driver.NAME FLAG... <settings set> EXTRA_ARGS
  (( HELP )) && return 0
  local driver=$1 extra
  shift
  set -f  # EXTRA_ARGS is split into words, never glob-expanded
  read -ra extra <<< "${EXTRA_ARGS:-}"
  set +f
  echo "[$(basename "$SCRIPT" .sh)] python -m retriever.driver.$driver $* ${FLAGS[*]} ${extra[*]}"
  RETRIEVER_SCRIPT_VARS=$RETRIEVER_SCRIPT_VARS "${PYTHON:-python}" -m "retriever.driver.$driver" "$@" "${FLAGS[@]}" \
    "${extra[@]}"
}
