// Public surface of the offline rule engine: rule list validation, compilation, the engine, defaults and the decision log.
export {
  COMPARISONS,
  canonicalSeriesKey,
  type Comparison,
  type Condition,
  ConditionError,
  formatCondition,
  RULE_SCOPE,
  parseCondition,
} from "./condition.ts";
export {
  type CompiledRule,
  type CompiledRuleSet,
  compileCondition,
  compileRule,
  compileRules,
  type Predicate,
} from "./compile.ts";
export {
  type DecisionValidationBody,
  DecisionLog,
  type DecisionVerdict,
  type LoggedDecision,
  validationBody,
} from "./decision-log.ts";
export { DEFAULT_RULES, defaultRuleSet } from "./defaults.ts";
export { RuleEngine, RuleEngineState, type RulePhase, type RuleStatus } from "./engine.ts";
export { parseRules, RuleInput, type RuleSpec } from "./schema.ts";
export {
  type Action,
  type ActionType,
  type AgentState,
  type Decision,
  SEVERITIES,
  type Severity,
  STATE_VARS,
  type Snapshot,
  type StateVar,
} from "./types.ts";
export {
  type MergedRules,
  mergeRuleSets,
  parseRuleSetBodies,
  RULE_SET_NAME,
  type RuleOrigin,
  type RuleSetBody,
} from "./rule-sets.ts";
