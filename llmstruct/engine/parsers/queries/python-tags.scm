; llmstruct Python query: one pass finds every node the parser assembles records from.
; Only nodes the parser reads are captured (each capture costs a Python object).
; Definitions are captured at any depth; the parser decides nesting by byte ranges.

(function_definition) @definition.function

(class_definition) @definition.class

; `f = lambda x: ...` at module level is a function named by the variable.
(module
  (expression_statement
    (assignment
      left: (identifier)
      right: (lambda)) @definition.lambda))

; The callee expression; the parser keeps plain and chained dotted names.
(call
  function: (_) @name.reference.call)

(import_statement) @reference.import

(import_from_statement) @reference.import

; `__all__ = [...]`, `__all__: list[str] = (...)`, `__all__ += [...]`
(module
  (expression_statement
    [
      (assignment left: (identifier) @_all)
      (augmented_assignment left: (identifier) @_all)
    ] @definition.exports)
  (#eq? @_all "__all__"))
