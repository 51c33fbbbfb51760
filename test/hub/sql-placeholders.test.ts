// `?` to $n for PostgreSQL: parameters numbered in order, text in quotes and comments untouched.
import { expect, test } from "bun:test";
import { toNumbered } from "../../hub/store/sql/index.ts";

test("placeholders: each ? outside quotes and comments becomes $1, $2, ... in order", () => {
  expect(toNumbered("SELECT a FROM t WHERE a = ? AND b IN (?, ?)")).toBe(
    "SELECT a FROM t WHERE a = $1 AND b IN ($2, $3)",
  );
  expect(toNumbered("SELECT 1")).toBe("SELECT 1");
});

test("placeholders: ? inside string literals, quoted names and comments is left alone", () => {
  expect(toNumbered("SELECT '?', 'it''s ?', \"odd?\" FROM t WHERE x = ?")).toBe(
    "SELECT '?', 'it''s ?', \"odd?\" FROM t WHERE x = $1",
  );
  expect(toNumbered("SELECT ? -- why?\n, ? /* and ? */ , ?")).toBe(
    "SELECT $1 -- why?\n, $2 /* and ? */ , $3",
  );
});
