"""Numbers fixed by the models and the audio they take, written once."""

SAMPLE_RATE = 16_000  # Hz: what Whisper's features and every encoder here take
WINDOW_SECONDS = 30.0  # Whisper's input window, and the longest span decoded at once
WHISPER_MAX_POSITIONS = 448  # Whisper's decoder window, its start sequence included
SPEECHLLM_MAX_NEW_TOKENS = 600  # the Speech-LLM's cap on tokens written per span
SPEECHLLM_CONFIG = "sbasr-speechllm.json"  # the file that marks a trained Speech-LLM
DEV_DECODE_MAX_LENGTH = 200  # tokens of a dev transcript decoded during Whisper training
DEFAULT_WHISPER_MODEL = "base"  # the Whisper model used where none is named
SPEECHLLM_BATCH_SIZE = 8  # spans the Speech-LLM decodes together
DEFAULT_QUANTIZATION = "int8"  # a CTranslate2 export's weights, and a converted model's
