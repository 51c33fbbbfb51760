// Every command of `novacron`, in the order `--help` lists them.
import type { Command } from "../command.ts";
import { ackCommand, alertsCommand } from "./alerts.ts";
import { applyCommand, planCommand } from "./apply.ts";
import { auditCommand, auditVerifyCommand } from "./audit.ts";
import { nodeDrainCommand, nodeShowCommand, nodesCommand, nodeUndrainCommand } from "./nodes.ts";
import { tokensCreateCommand, tokensListCommand, tokensRevokeCommand } from "./tokens.ts";
import { topCommand } from "./top.ts";
import {
  logsCommand,
  workloadDeleteCommand,
  workloadPromoteCommand,
  workloadRollbackCommand,
  workloadShowCommand,
  workloadsCommand,
} from "./workloads.ts";

export const COMMANDS: readonly Command[] = [
  nodesCommand,
  nodeShowCommand,
  nodeDrainCommand,
  nodeUndrainCommand,
  workloadsCommand,
  workloadShowCommand,
  workloadPromoteCommand,
  workloadRollbackCommand,
  workloadDeleteCommand,
  applyCommand,
  planCommand,
  logsCommand,
  alertsCommand,
  ackCommand,
  tokensListCommand,
  tokensCreateCommand,
  tokensRevokeCommand,
  auditCommand,
  auditVerifyCommand,
  topCommand,
];
