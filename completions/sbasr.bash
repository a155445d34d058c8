# bash completion for sbasr (generated from the sbasr CLI by `python -m sbasr.completions`; do not edit)
_sbasr() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local cmd="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -*) ;;
            *) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done
    COMPREPLY=()
    case "$cmd" in
        "")
            COMPREPLY=($(compgen -W "score transcribe models finetune export --version --help" -- "$cur")) ;;
        score)
            case "$prev" in
                --language|-l) :; return ;;
                --normalize) COMPREPLY=($(compgen -W "mlcslm whisper none" -- "$cur")); return ;;
                --unit) COMPREPLY=($(compgen -W "word char mixed" -- "$cur")); return ;;
                --alignments) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --jobs) :; return ;;
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--language -l --language-from-key --no-language-from-key --normalize --unit --by-line --no-by-line --no-strict --strict --json --alignments --jobs --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        transcribe)
            case "$prev" in
                --engine) COMPREPLY=($(compgen -W "whisper speechllm" -- "$cur")); return ;;
                --model|-m) :; return ;;
                --language|-l) :; return ;;
                --channels) COMPREPLY=($(compgen -W "mix split" -- "$cur")); return ;;
                --format|-f) COMPREPLY=($(compgen -W "txt srt vtt json tsv keyed all" -- "$cur")); return ;;
                --output-dir|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --beam-size) :; return ;;
                --temperature) :; return ;;
                --temperature-increment) :; return ;;
                --initial-prompt) :; return ;;
                --hotwords) :; return ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return ;;
                --compute-type) :; return ;;
                --threads) :; return ;;
                --batch-size) :; return ;;
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--engine --model -m --language -l --language-per-segment --no-language-per-segment --channels --segments --format -f --output-dir -o --no-skip-existing --skip-existing --beam-size --temperature --temperature-increment --initial-prompt --hotwords --condition-on-previous-text --no-condition-on-previous-text --no-word-timestamps --word-timestamps --device --compute-type --threads --batch-size --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        models)
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
            else
                :
            fi ;;
        finetune)
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        export)
            case "$prev" in
                --to) COMPREPLY=($(compgen -W "ct2" -- "$cur")); return ;;
                --quantization) COMPREPLY=($(compgen -W "int8 int8_float16 int8_float32 float16 bfloat16 float32" -- "$cur")); return ;;
                --output-dir|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--to --quantization --output-dir -o --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
    esac
}
complete -o filenames -F _sbasr sbasr
