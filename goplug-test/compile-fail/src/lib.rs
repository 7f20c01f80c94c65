//! Each program in src/bin must fail to compile.
