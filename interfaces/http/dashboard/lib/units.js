// Amounts: integers in the currency's smallest unit on the wire, decimals for people.

export const MINUS = "\u2212";

/** "12.50" from 1250 with 2 decimals; negative amounts with a true minus sign. */
export function display(units, decimals) {
  const neg = units < 0;
  const digits = String(Math.abs(units)).padStart(decimals + 1, "0");
  const whole = decimals ? digits.slice(0, -decimals) : digits;
  const frac = decimals ? "." + digits.slice(-decimals) : "";
  return (neg ? MINUS : "") + whole + frac;
}

/** Smallest units from what a person typed ("1.5", "2", "0,25"); throws with a reason. */
export function parseAmount(text, decimals) {
  const t = String(text).trim().replace(",", ".");
  const m = /^(\d+)(?:\.(\d+))?$/.exec(t);
  if (!m) throw new Error("type an amount like 1.50");
  const frac = m[2] || "";
  if (frac.length > decimals) {
    throw new Error(decimals ? `at most ${decimals} decimals` : "whole units only");
  }
  const units = Number(m[1] + frac.padEnd(decimals, "0"));
  if (!Number.isSafeInteger(units)) throw new Error("that amount is too large");
  if (units < 1) throw new Error("the amount must be more than zero");
  return units;
}
