/**
 * JSON shapes of the DigitalOcean API v2 routes the driver uses, as the
 * OpenAPI reference defines them (only the fields the driver reads or sends).
 */

export interface DoRegion {
  readonly name: string;
  readonly slug: string;
  readonly sizes?: readonly string[];
  readonly features?: readonly string[];
  readonly available?: boolean;
}

export interface DoVolume {
  readonly id: string;
  readonly region: DoRegion;
  /** Droplets the volume is attached to (at most one today); null when none. */
  readonly droplet_ids: readonly number[] | null;
  readonly name: string;
  readonly description: string;
  /** GiB (1024^3). */
  readonly size_gigabytes: number;
  readonly created_at: string;
  readonly filesystem_type?: string;
  readonly filesystem_label?: string;
  readonly tags: readonly string[] | null;
}

export interface NewDoVolume {
  readonly name: string;
  readonly region: string;
  readonly size_gigabytes: number;
  readonly description?: string;
  readonly snapshot_id?: string;
  readonly tags?: readonly string[];
}

export type DoActionStatus = "in-progress" | "completed" | "errored";

export interface DoAction {
  readonly id: number;
  readonly status: DoActionStatus;
  /** e.g. attach_volume, detach_volume, resize_volume */
  readonly type: string;
  readonly started_at: string | null;
  readonly completed_at: string | null;
  readonly resource_id: number | null;
  readonly resource_type: string;
  readonly region?: DoRegion;
  readonly region_slug: string | null;
}

export interface DoSnapshot {
  readonly id: string;
  readonly name: string;
  readonly created_at: string;
  /** Regions the snapshot is available in; empty while it is still being taken. */
  readonly regions: readonly string[];
  readonly resource_id: string;
  readonly resource_type: "volume" | "droplet";
  /** GiB a volume restored from the snapshot needs at least (the source volume's size). */
  readonly min_disk_size: number;
  /** Billable size in GB (a float). */
  readonly size_gigabytes: number;
  readonly tags: readonly string[] | null;
}

export interface DoDroplet {
  readonly id: number;
  readonly name: string;
  readonly status: string;
  readonly region: DoRegion;
  readonly volume_ids: readonly string[];
  readonly tags: readonly string[];
}

export interface DoAccount {
  readonly droplet_limit: number;
  readonly volume_limit?: number;
  readonly email: string;
  readonly uuid: string;
  readonly status: string;
}

export interface DoPageLinks {
  readonly first?: string;
  readonly prev?: string;
  readonly next?: string;
  readonly last?: string;
}

export interface DoLinks {
  readonly pages?: DoPageLinks;
}

export interface DoMeta {
  readonly total?: number;
}

/** The API's error body: `{id, message, request_id?}`. */
export interface DoErrorBody {
  readonly id: string;
  readonly message: string;
  readonly request_id?: string;
}

/** One page of a listing. */
export interface DoPage<T> {
  readonly items: readonly T[];
  /** The page number of the next page, from `links.pages.next`; undefined on the last page. */
  readonly nextPage: number | undefined;
  readonly total: number | undefined;
}

export interface PageRequest {
  /** 1-based. */
  readonly page?: number;
  /** 1..200; omitted lets the API choose (20). */
  readonly perPage?: number;
}

/** The API's largest per_page. */
export const MAX_PER_PAGE = 200;
