;; A task under ABI v1 (docs/spec/compute-abi-v1.md): bit 5 of every input byte flipped,
;; which swaps the case of ASCII letters (and changes every other byte too).
(module
  (import "icn" "input_len" (func $len (result i32)))
  (import "icn" "input_read" (func $read (param i32 i32) (result i32)))
  (import "icn" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (local $n i32) (local $i i32)
    (local.set $n (call $read (i32.const 0) (call $len)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (local.get $i) (i32.xor (i32.load8_u (local.get $i)) (i32.const 32)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (drop (call $write (i32.const 0) (local.get $n)))
    (i32.const 0)))
