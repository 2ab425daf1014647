import { Aborted } from "../../csi/errors.js";
import type { Page } from "../backend.js";
import { MAX_PER_PAGE, type DoPage, type PageRequest } from "./api/types.js";

/** Fetches one page of a DigitalOcean listing. */
export type PageLister<T> = (request: PageRequest) => Promise<DoPage<T>>;

/**
 * CSI paging over a DigitalOcean listing. The CSI token is the number of
 * entries already returned (an offset), so a caller may change max_entries
 * between calls and still sees every item exactly once. The DigitalOcean
 * pages fetched are chosen to cover the requested range: with a constant
 * max_entries (<= 200) that is one request per CSI page. With max_entries 0
 * every remaining item is returned, fetched `defaultPerPage` at a time (the
 * API's own default when that is 0, as --default-volumes-page-size says).
 */
export async function listRange<T>(
  list: PageLister<T>,
  maxEntries: number,
  startingToken: string,
  defaultPerPage: number,
): Promise<Page<T>> {
  const offset = parseToken(startingToken);
  const limit = maxEntries > 0 ? maxEntries : Infinity;
  let perPage: number | undefined =
    maxEntries > 0 ? Math.min(maxEntries, MAX_PER_PAGE) : defaultPerPage > 0 ? Math.min(defaultPerPage, MAX_PER_PAGE) : undefined;
  // Without a known page size an offset cannot be turned into a page number.
  if (perPage === undefined && offset > 0) perPage = MAX_PER_PAGE;

  const items: T[] = [];
  let page = perPage === undefined ? 1 : Math.floor(offset / perPage) + 1;
  let skip = perPage === undefined ? 0 : offset % perPage;
  let more = false;
  for (;;) {
    const result = await list({ page, perPage });
    const fresh = result.items.slice(skip);
    skip = 0;
    const room = limit - items.length;
    if (fresh.length > room) {
      items.push(...fresh.slice(0, room));
      more = true;
      break;
    }
    items.push(...fresh);
    if (result.nextPage === undefined) break;
    if (items.length >= limit) {
      more = true;
      break;
    }
    page = result.nextPage;
  }
  return { items, nextToken: more ? String(offset + items.length) : "" };
}

function parseToken(token: string): number {
  if (token === "") return 0;
  if (!/^\d{1,15}$/.test(token)) throw Aborted("starting_token %q was not issued by this driver", token);
  return Number(token);
}
