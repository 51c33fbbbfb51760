// The functions an expression may call, with their arity; the same in rules and pipelines.

/** Name → arity [min, max] and implementation. */
export const FUNCTIONS: Readonly<
  Record<string, { readonly arity: readonly [number, number]; readonly fn: (...a: number[]) => number }>
> = {
  abs: { arity: [1, 1], fn: Math.abs },
  sqrt: { arity: [1, 1], fn: Math.sqrt },
  log: { arity: [1, 1], fn: Math.log },
  log10: { arity: [1, 1], fn: Math.log10 },
  exp: { arity: [1, 1], fn: Math.exp },
  floor: { arity: [1, 1], fn: Math.floor },
  ceil: { arity: [1, 1], fn: Math.ceil },
  round: { arity: [1, 1], fn: Math.round },
  pow: { arity: [2, 2], fn: Math.pow },
  min: { arity: [2, 8], fn: Math.min },
  max: { arity: [2, 8], fn: Math.max },
};
