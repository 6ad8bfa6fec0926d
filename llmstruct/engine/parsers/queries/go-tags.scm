; Go tags for llmstruct (tree-sitter-go 0.25.0).
;
; One query run per file finds every node the Go parser needs; the Python side
; (llmstruct/engine/parsers/go.py) only assembles records from these captures
; with cheap field lookups. Patterns that can only match at file level are
; filtered there too (a declaration wrapped in an ERROR node still counts).

; Package clause.
(package_clause
  (package_identifier) @name.definition.package) @definition.package

; Imports: one record per spec, grouped or not.
(import_spec
  path: (_) @name.reference.import) @reference.import

; Functions and methods (Go has no nested named functions).
(function_declaration
  name: (identifier) @name.definition.function) @definition.function

(method_declaration
  name: (field_identifier) @name.definition.method) @definition.method

; Named types: struct / interface / other (alias or defined type).
(type_declaration
  (type_spec
    name: (type_identifier) @name.definition.class) @definition.class)

(type_declaration
  (type_alias
    name: (type_identifier) @name.definition.class) @definition.class)

; Package-level variables and constants, for `exports`; a variable bound to a
; function literal becomes a function named by the variable.
(source_file
  (var_declaration
    (var_spec
      name: (identifier) @name.definition.variable) @definition.variable))

(source_file
  (var_declaration
    (var_spec_list
      (var_spec
        name: (identifier) @name.definition.variable) @definition.variable)))

(source_file
  (const_declaration
    (const_spec
      name: (identifier) @name.definition.constant)))

; Calls: the callee expression. `F[int](x)` parses as a conversion to a generic
; type, so it is captured by its generic type.
(call_expression
  function: (_) @name.reference.call)

(type_conversion_expression
  type: (generic_type) @name.reference.call)
