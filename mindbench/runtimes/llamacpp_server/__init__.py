"""The llamacpp-server runtime: llama-cpp-python's OpenAI server started by mindbench (launcher.py)
and measured through the openai engine (runtime.py)."""
