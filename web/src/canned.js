// The page stands in for the chat backend: every assistant reply is CANNED (an echo with
// made-up retrieval metadata), so that the memory, the summary and the analytics have
// something realistic to hold. Deterministic, so a test can predict it.

const KB = [
  { id: "kb_getting_started", collection: "product_docs", topic: "getting started" },
  { id: "kb_billing_faq", collection: "support_faq", topic: "billing" },
  { id: "kb_account_security", collection: "support_faq", topic: "account security" },
  { id: "kb_troubleshooting", collection: "product_docs", topic: "troubleshooting" },
];

function hash(s) {
  // FNV-1a, 32 bits: stable across browsers and Node.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export const CANNED_LABEL = "Canned reply (this page stands in for the chat backend)";

/**
 * @param {string} userText  the user's message
 * @param {number} turn      1 for the first exchange of the session, 2 for the next...
 * @returns {{content: string, metadata: {confidence: number, sources: string[], collection: string, canned: true}}}
 */
export function cannedReply(userText, turn) {
  const h = hash(userText);
  const kb = KB[h % KB.length];
  const confidence = Math.round((0.55 + ((h >>> 8) % 41) / 100) * 100) / 100; // 0.55 .. 0.95
  const quoted = userText.trim().replace(/\s+/g, " ");
  const short = quoted.length > 80 ? `${quoted.slice(0, 77)}...` : quoted;
  return {
    content: `[canned #${turn}] You said: "${short}". A real assistant would answer from ${kb.topic} (${kb.id}).`,
    metadata: { confidence, sources: [kb.id], collection: kb.collection, canned: true },
  };
}
