# bash completion for sbasr (generated from the sbasr CLI by `python tools/completions.py`; do not edit)
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
            COMPREPLY=($(compgen -W "score transcribe merge models finetune export --version --help" -- "$cur")) ;;
        score)
            case "$prev" in
                --language|-l) :; return ;;
                --normalize) COMPREPLY=($(compgen -W "mlcslm whisper none" -- "$cur")); return ;;
                --unit) COMPREPLY=($(compgen -W "word char mixed" -- "$cur")); return ;;
                --jobs) :; return ;;
                --alignments) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--language -l --language-from-key --no-language-from-key --normalize --unit --by-line --no-by-line --no-strict --strict --jobs --json --alignments --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        transcribe)
            case "$prev" in
                --engine) COMPREPLY=($(compgen -W "whisper speechllm" -- "$cur")); return ;;
                --model|-m) :; return ;;
                --format|-f) COMPREPLY=($(compgen -W "txt srt vtt json tsv keyed all" -- "$cur")); return ;;
                --output-dir|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --channels) COMPREPLY=($(compgen -W "mix split" -- "$cur")); return ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return ;;
                --compute-type) :; return ;;
                --threads) :; return ;;
                --shard) :; return ;;
                --language|-l) :; return ;;
                --beam-size) :; return ;;
                --batch-size) :; return ;;
                --max-new-tokens) :; return ;;
                --temperature) :; return ;;
                --temperature-increment) :; return ;;
                --initial-prompt) :; return ;;
                --hotwords) :; return ;;
                --nbest) :; return ;;
                --rescore-weight) :; return ;;
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--engine --model -m --segments --format -f --output-dir -o --no-skip-existing --skip-existing --channels --language-per-segment --no-language-per-segment --device --compute-type --threads --shard --language -l --beam-size --batch-size --max-new-tokens --temperature --temperature-increment --initial-prompt --hotwords --condition-on-previous-text --no-condition-on-previous-text --no-word-timestamps --word-timestamps --check-corrections --no-check-corrections --no-rescore --rescore --nbest --rescore-weight --no-rescore-own --rescore-own --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        merge)
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--help" -- "$cur"))
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
            case "$prev" in
                --arch) COMPREPLY=($(compgen -W "whisper speechllm" -- "$cur")); return ;;
                --train) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --dev) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --output-dir|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --model|-m) :; return ;;
                --learning-rate) :; return ;;
                --warmup-steps) :; return ;;
                --lr-scheduler) :; return ;;
                --epochs) :; return ;;
                --max-steps) :; return ;;
                --batch-size) :; return ;;
                --grad-accum) :; return ;;
                --eval-steps) :; return ;;
                --save-steps) :; return ;;
                --logging-steps) :; return ;;
                --seed) :; return ;;
                --precision) COMPREPLY=($(compgen -W "auto fp32 fp16 bf16" -- "$cur")); return ;;
                --speed-perturb) :; return ;;
                --deepspeed) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --num-workers) :; return ;;
                --method) COMPREPLY=($(compgen -W "lora full" -- "$cur")); return ;;
                --layer-lr-decay) :; return ;;
                --lora-r) :; return ;;
                --lora-alpha) :; return ;;
                --lora-dropout) :; return ;;
                --lora-targets) :; return ;;
                --quantization) COMPREPLY=($(compgen -W "int8 int8_float16 int8_float32 float16 bfloat16 float32" -- "$cur")); return ;;
                --recipe) COMPREPLY=($(compgen -W "small-data paper" -- "$cur")); return ;;
                --encoder2) :; return ;;
                --fusion) COMPREPLY=($(compgen -W "concat uni-cross bi-cross gated-bi-cross gated-bi-cross-concat" -- "$cur")); return ;;
                --projector) COMPREPLY=($(compgen -W "conv linear qformer" -- "$cur")); return ;;
                --llm) :; return ;;
                --prompt) :; return ;;
                --train-encoder) COMPREPLY=($(compgen -W "frozen lora full" -- "$cur")); return ;;
                --stage|--stages) :; return ;;
                --init) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --batch-seconds) :; return ;;
                --average-best) :; return ;;
                --select-by) COMPREPLY=($(compgen -W "wer loss" -- "$cur")); return ;;
                --patience) :; return ;;
                --hypothesis-model) :; return ;;
                --ctc-weight) :; return ;;
                --nbest) :; return ;;
                --nbest-prompt) :; return ;;
                --encoder-cache) COMPREPLY=($(compgen -W "auto off" -- "$cur")); return ;;
                --encoder-cache-dir) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--arch --train --dev --output-dir -o --model -m --learning-rate --warmup-steps --lr-scheduler --epochs --max-steps --batch-size --grad-accum --eval-steps --save-steps --logging-steps --seed --precision --gradient-checkpointing --no-gradient-checkpointing --speed-perturb --no-resume --resume --no-overwrite --overwrite --deepspeed --num-workers --method --freeze-encoder --no-freeze-encoder --no-spec-augment --spec-augment --layer-lr-decay --lora-r --lora-alpha --lora-dropout --lora-targets --export --no-export --quantization --recipe --encoder2 --fusion --projector --llm --prompt --train-encoder --stage --stages --init --batch-seconds --average-best --select-by --patience --hypothesis --no-hypothesis --hypothesis-model --ctc-weight --chat-template --no-chat-template --no-rescore --rescore --nbest --nbest-prompt --encoder-cache --encoder-cache-dir --help" -- "$cur"))
            else
                :
            fi ;;
        export)
            case "$prev" in
                --to) COMPREPLY=($(compgen -W "ct2" -- "$cur")); return ;;
                --quantization) COMPREPLY=($(compgen -W "int8 int8_float16 int8_float32 float16 bfloat16 float32" -- "$cur")); return ;;
                --output-dir|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--to --quantization --output-dir -o --no-overwrite --overwrite --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
    esac
}
complete -o filenames -F _sbasr sbasr
