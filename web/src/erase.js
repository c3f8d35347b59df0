// "Delete my data": when the confirmation lets the erasure go, and what the page says about
// the receipt `delete_my_data` answers. Pure: no DOM, no network.

export const CONFIRM_WORD = "DELETE";

/**
 * The erasure may go only once the user has typed the word the page asks for, DELETE, in
 * capitals (surrounding blanks aside): "delete" is not it. The field asks a phone's keyboard
 * for capitals (autocapitalize="characters").
 */
export function erasureConfirmed(typed) {
  return typeof typed === "string" && typed.trim() === CONFIRM_WORD;
}

// key in the receipt's `erased`, label, singular, plural
const COUNTS = [
  ["sessions", "Sessions", "session", "sessions"],
  ["messages", "Messages", "message", "messages"],
  ["analytics_entries", "Analytics entries", "analytics entry", "analytics entries"],
  ["redis_keys", "Redis keys", "Redis key", "Redis keys"],
  ["documents", "Firestore documents", "Firestore document", "Firestore documents"],
];

function count(value) {
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/**
 * The receipt as rows for the page: each count with its label, and one sentence.
 * @param {{receipt_id: string, complete: boolean, erased: Record<string, number>}} receipt
 */
export function describeReceipt(receipt) {
  const erased = (receipt && receipt.erased) || {};
  const rows = COUNTS.map(([key, label, one, many]) => {
    const n = count(erased[key]);
    return { key, label, value: n, text: `${n} ${n === 1 ? one : many}` };
  });
  const [sessions, messages, analytics] = rows;
  const sentence = receipt && receipt.complete
    ? `Erased: ${sessions.text}, ${messages.text} and ${analytics.text}. Receipt ${receipt.receipt_id}.`
    // The service says complete only once every layer is done; anything else asks for the call again.
    : "The erasure has not finished yet: try again to complete it.";
  return { receiptId: String((receipt && receipt.receipt_id) || ""), complete: !!(receipt && receipt.complete), rows, sentence };
}
