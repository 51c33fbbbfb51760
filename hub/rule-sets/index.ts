// Public surface of the hub's rule sets: stored with revisions, distributed to the nodes they target.
export {
  type AppliedRuleSets,
  checkRuleSetName,
  parseRuleSetPut,
  RuleSetPut,
  type RuleSetRecord,
  RuleSets,
  type RuleSetTarget,
} from "./rule-sets.ts";
