// Public surface of the one expression language of rule conditions and stream pipelines: parse, compile, format.
export {
  ARITHMETIC,
  type Arithmetic,
  COMPARISONS,
  type Comparison,
  type Expr,
  exprNames,
  formatExpr,
  isTruth,
} from "./ast.ts";
export { compileNumber, compileTruth, type NumFn, type Readers, type TruthFn } from "./compile.ts";
export { FUNCTIONS } from "./functions.ts";
export {
  describeRetired,
  ExprError,
  MAX_EXPR_CHARS,
  type Parsed,
  parseCondition,
  parseExpr,
  type Retired,
  type Scope,
} from "./parse.ts";
export { tokenize } from "./_lexer.ts";
