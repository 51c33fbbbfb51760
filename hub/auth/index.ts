// Operator authorization and accountability: roles, operator tokens, the audit log.
export {
  type AuditEntry,
  type AuditInput,
  AuditLog,
  type AuditQuery,
  stateDigest,
  type VerifyResult,
} from "./audit-log.ts";
export { type OperatorToken, OperatorTokens, type TokenIdentity } from "./operator-tokens.ts";
export { READ_METHODS, ROLES, type Role, requiredRole, roleAllows } from "./roles.ts";
