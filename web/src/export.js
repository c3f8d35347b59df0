// "Download my data": every page of the `export_my_data` function, combined into one file.
// Pure: no DOM; the network comes in as `fetchPage`.

export const EXPORT_FILENAME = "chat-memory-export.json";
export const EXPORT_PAGE_SIZE = 50;

/**
 * One export document from the pages the service answered, in order.
 * @param {Array<{user_id: string, user?: object, sessions: object[], next_cursor: string|null}>} pages
 * @param {string} exportedAt  ISO 8601
 */
export function combineExportPages(pages, exportedAt) {
  if (!pages.length) throw new Error("the export answered no page");
  const [first] = pages;
  const sessions = new Map();
  let open = null; // the session whose last part said `continues`: the next part is its rest
  for (const page of pages) {
    if (page.user_id !== first.user_id) throw new Error("the export's pages belong to different users");
    for (const s of page.sessions || []) {
      const { continues = false, ...part } = s;
      if (open !== null && open !== s.session_id) throw new Error("the export's next page did not continue the session");
      const held = open === s.session_id ? sessions.get(s.session_id) : null;
      // A session split across pages (a page is bounded by bytes): its parts, in order, are
      // one session, messages and analytics appended. Otherwise the later read is the
      // fresher, and the file holds each session once.
      sessions.set(
        s.session_id,
        held
          ? { ...part, messages: [...held.messages, ...(part.messages || [])], analytics: [...held.analytics, ...(part.analytics || [])] }
          : { ...part, messages: [...(part.messages || [])], analytics: [...(part.analytics || [])] },
      );
      open = continues ? s.session_id : null;
    }
  }
  if (open !== null) throw new Error("the export ended inside a session");
  return { user_id: first.user_id, user: first.user ?? null, sessions: [...sessions.values()], exported_at: exportedAt };
}

/**
 * Read every page, following `next_cursor` until null.
 * @param {(cursor: string|null) => Promise<object>} fetchPage
 * @param {(pagesRead: number, sessionsRead: number) => void} [onPage]  progress
 */
export async function readAllExportPages(fetchPage, onPage = () => {}) {
  const pages = [];
  const seen = new Set();
  let cursor = null;
  let sessionsRead = 0;
  do {
    const page = await fetchPage(cursor);
    pages.push(page);
    sessionsRead += (page.sessions || []).length;
    onPage(pages.length, sessionsRead);
    cursor = page.next_cursor ?? null;
    // A cursor offered twice would loop for ever: stop rather than save a file that never ends.
    if (cursor !== null && seen.has(cursor)) throw new Error("the export repeated a page cursor");
    if (cursor !== null) seen.add(cursor);
  } while (cursor !== null);
  return pages;
}

export function exportBlob(doc) {
  return new Blob([`${JSON.stringify(doc, null, 2)}\n`], { type: "application/json;charset=utf-8" });
}
