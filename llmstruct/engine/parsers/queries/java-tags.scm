; Java tags for llmstruct (tree-sitter-java 0.23.5).
;
; One query run per file finds every node the Java parser needs; the Python side
; (llmstruct/engine/parsers/java.py) assembles records from these captures. Types
; and methods are captured wherever they are; Python keeps named member types
; (flattened as `Outer.Inner`) and drops local and anonymous classes, whose calls
; then belong to the enclosing method.

(package_declaration
  (_) @name.definition.package) @definition.package

(import_declaration) @reference.import

; Types.
(class_declaration
  name: (identifier) @name.definition.class) @definition.class

(enum_declaration
  name: (identifier) @name.definition.class) @definition.class

(record_declaration
  name: (identifier) @name.definition.class) @definition.class

(interface_declaration
  name: (identifier) @name.definition.interface) @definition.interface

(annotation_type_declaration
  name: (identifier) @name.definition.interface) @definition.interface

; Methods, constructors, annotation elements.
(method_declaration
  name: (identifier) @name.definition.method) @definition.method

(constructor_declaration
  name: (identifier) @name.definition.method) @definition.method

(compact_constructor_declaration
  name: (identifier) @name.definition.method) @definition.method

(annotation_type_element_declaration
  name: (identifier) @name.definition.method) @definition.method

; Calls: method invocations, `new T(...)`, and `this(...)`/`super(...)`.
(method_invocation
  name: (identifier) @name.reference.call) @reference.call

(object_creation_expression
  type: (_) @name.reference.class) @reference.class

(explicit_constructor_invocation
  constructor: (_) @name.reference.call) @reference.call
