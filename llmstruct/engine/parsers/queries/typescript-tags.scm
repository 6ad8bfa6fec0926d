; llmstruct TypeScript query (tsx-tags.scm is this file plus the JSX patterns at its end).
; One pass finds every node the parser assembles records from; only nodes the parser
; reads are captured (each capture costs a Python object). Declarations are captured
; at any depth: the parser keeps those at module level (directly or under `export` /
; `declare`) or in a namespace body, and drops nested ones after a few parent lookups.

[
  (function_declaration)
  (generator_function_declaration)
  (function_signature)
] @definition.function

[
  (class_declaration)
  (abstract_class_declaration)
] @definition.class

(interface_declaration) @definition.interface

(type_alias_declaration) @definition.type

(enum_declaration) @definition.enum

; `const f = () => ...`, `var g = function* () {}`, `const A = class {}`
(variable_declarator
  name: (identifier)
  value: [
    (arrow_function)
    (function_expression)
    (generator_function)
    (class)
  ]) @definition.variable

; `exports.f = function () {}`, `module.exports = {...}`, `app.get = () => ...`
(program
  (expression_statement
    (assignment_expression) @definition.assignment))

(program
  (export_statement) @definition.export)

(import_statement) @reference.import

; Every `require('x')` with one literal argument is a module dependency.
(call_expression
  function: (identifier) @_require
  arguments: (arguments . (string) .)
  (#eq? @_require "require")) @reference.require

(call_expression
  function: (_) @name.reference.call)

(new_expression
  constructor: (_) @name.reference.call)
