"""Keyboard layouts and execution providers by name: the one home of each list, which the
settings, `nextword evaluate`, the strip and the runtime read (pure Python, imports nothing)."""

LAYOUTS = {  # rows of letter keys; each row sits half a key further right than the one above
    "qwerty": ("qwertyuiop", "asdfghjkl", "zxcvbnm"),
    "qwertz": ("qwertzuiopü", "asdfghjklöä", "yxcvbnm"),
    "azerty": ("azertyuiop", "qsdfghjklm", "wxcvbn"),
}
DEFAULT_LAYOUT = "qwerty"

# onnxruntime's execution providers by the names the settings take ("auto" chooses among them)
PROVIDER_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
