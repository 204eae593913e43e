"""Code generated from proto/tock/handler/v1/handler.proto by scripts/generate.sh. DO NOT EDIT.

Private to the SDK: the public API speaks dataclasses, never these types.
"""
