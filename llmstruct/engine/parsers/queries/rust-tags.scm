; Rust tags for llmstruct (tree-sitter-rust 0.24.2).
;
; One query run per file finds every node the Rust parser needs; the Python side
; (llmstruct/engine/parsers/rust.py) assembles records from these captures. Items
; are captured wherever they are; Python keeps those at module level (the file or
; an inline `mod`) and inside `impl`/`trait` bodies.

; Imports.
(use_declaration) @reference.import

(extern_crate_declaration) @reference.import

; Types and traits.
(struct_item
  name: (type_identifier) @name.definition.class) @definition.class

(enum_item
  name: (type_identifier) @name.definition.class) @definition.class

(union_item
  name: (type_identifier) @name.definition.class) @definition.class

(type_item
  name: (type_identifier) @name.definition.class) @definition.class

(trait_item
  name: (type_identifier) @name.definition.interface) @definition.interface

; Implementations: methods attach to the implemented type.
(impl_item
  type: (_) @name.reference.implementation) @reference.implementation

; Functions, methods, and trait method signatures.
(function_item
  name: (identifier) @name.definition.function) @definition.function

(function_signature_item
  name: (identifier) @name.definition.function) @definition.function

; Other public names a file can export.
(mod_item
  name: (identifier) @name.definition.module) @definition.module

(source_file
  (const_item
    name: (identifier) @name.definition.constant) @definition.constant)

(source_file
  (static_item
    name: (identifier) @name.definition.constant) @definition.constant)

; Calls: the callee expression, and macros by their path.
(call_expression
  function: (_) @name.reference.call)

(macro_invocation
  macro: (_) @name.reference.macro)

; Macro arguments are unparsed token trees: a name directly followed by a
; token tree is a call candidate (`assert_eq!(foo(1), 2)`); Python checks that
; the tree is parenthesised or that a `!` sits between them.
(token_tree
  (identifier) @name.reference.token
  .
  (token_tree))
