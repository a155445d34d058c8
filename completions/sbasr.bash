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
            COMPREPLY=($(compgen -W "score transcribe finetune export --version --help" -- "$cur")) ;;
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
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        finetune)
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        export)
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
    esac
}
complete -o filenames -F _sbasr sbasr
