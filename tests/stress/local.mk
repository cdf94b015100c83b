# tests/stress
