//! Helpers shared by the compat tests (peers: llama.cpp, PyPI gguf/safetensors).
