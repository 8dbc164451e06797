"""Helpers the tests share: worlds built in the emulator, fault and metadata servers, the
policy pack's harness and its breakage programs, and the IAM linter."""
