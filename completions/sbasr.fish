# fish completion for sbasr (generated from the sbasr CLI by `python -m sbasr.completions`; do not edit)
complete -c sbasr -f
complete -c sbasr -n __fish_use_subcommand -l version -d 'Show the version'
complete -c sbasr -n __fish_use_subcommand -l help -d 'Show this message and exit'
complete -c sbasr -n __fish_use_subcommand -a score -d 'Score hypotheses against references: per-language and pooled CER/WER'
complete -c sbasr -n __fish_use_subcommand -a transcribe -d 'Transcribe recordings (Whisper or Speech-LLM engine)'
complete -c sbasr -n __fish_use_subcommand -a finetune -d 'Fine-tune Whisper (LoRA or full) or train a Speech-LLM'
complete -c sbasr -n __fish_use_subcommand -a export -d 'Export a fine-tuned model to CTranslate2'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l language -s l -x -d 'Language of every utterance'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l language-from-key -l no-language-from-key -d 'Take the language from the key prefix (English-American-..., ja-...)'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l normalize -x -a 'mlcslm whisper none' -d 'Text normalisation; mlcslm is the challenge\'s rule'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l unit -x -a 'word char mixed' -d 'Count words or characters for all (default: chars for ja ko th zh yue, words otherwise)'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l by-line -l no-by-line -d 'Plain text, one utterance per line, matched by line number'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l no-strict -l strict -d 'Fail if an id is in one file but not the other'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l json -d 'Print JSON for machines'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l alignments -r -F -d 'Write every utterance aligned (REF/HYP/S-D-I), worst first'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l jobs -x -d 'Processes for large sets; 0 = one per CPU core'
complete -c sbasr -n '__fish_seen_subcommand_from score' -l help -d 'Show this message and exit'
complete -c sbasr -n '__fish_seen_subcommand_from score' -F
complete -c sbasr -n '__fish_seen_subcommand_from transcribe' -l help -d 'Show this message and exit'
complete -c sbasr -n '__fish_seen_subcommand_from transcribe' -F
complete -c sbasr -n '__fish_seen_subcommand_from finetune' -l help -d 'Show this message and exit'
complete -c sbasr -n '__fish_seen_subcommand_from finetune' -F
complete -c sbasr -n '__fish_seen_subcommand_from export' -l help -d 'Show this message and exit'
complete -c sbasr -n '__fish_seen_subcommand_from export' -F
# subcommands: score transcribe finetune export
