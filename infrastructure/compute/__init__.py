"""The WASM sandbox under wasmtime (issue 18, tier 2): engine, runs, intake, compiled cache."""
