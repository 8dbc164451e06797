"""Helpers the tests share: worlds built in the emulator, fault and metadata servers, the
policy pack's harness and its breakage programs, the IAM linter and the forked aws CLI."""
