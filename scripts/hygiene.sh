#!/usr/bin/env bash
# Fails on a tracked binary (ELF, Mach-O, PE, or any file with a NUL byte in
# its first 8 KiB that is not in the allowlist below) or a tracked file over
# 1 MB: built programs and large data stay out of the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=$((1024 * 1024))
fail=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  if [ "$size" -gt "$limit" ]; then
    echo "hygiene: $f is $size bytes (over 1 MB)"
    fail=1
  fi
  case "$f" in
    # binary by nature: fuzz corpora and test data are allowed
    */testdata/*) continue ;;
  esac
  magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
    7f454c46 | cffaedfe | cefaedfe | feedfacf | feedface | 4d5a*)
      echo "hygiene: $f is an executable (magic $magic)"
      fail=1
      continue
      ;;
  esac
  if head -c 8192 "$f" | grep -qaP '\x00'; then
    echo "hygiene: $f is binary (a NUL byte in its first 8 KiB)"
    fail=1
  fi
done < <(git ls-files -z)
exit "$fail"
