/**
 * Nomad job specs for the driver (DigitalOcean backend): a controller service
 * job and a node system job, each with a `csi_plugin` stanza, plus a volume
 * specification for `nomad volume create`. Rendered as HCL from plain data.
 */
import { API_URL, SOCKET_FILE, TOKEN_ENV, type DeployConfig } from "./config.js";
import { GENERATED_NOTICE } from "./render.js";

export interface Heredoc {
  readonly heredoc: string;
}
export type HclValue = string | number | boolean | readonly string[] | Heredoc;

export interface HclBlock {
  readonly type: string;
  readonly labels?: readonly string[];
  readonly comment?: string;
  readonly attrs?: readonly (readonly [string, HclValue])[];
  readonly blocks?: readonly HclBlock[];
}

export interface HclFile {
  readonly path: string;
  readonly header: string;
  /** Top-level attributes (volume specifications have no enclosing block). */
  readonly attrs?: readonly (readonly [string, HclValue])[];
  readonly blocks: readonly HclBlock[];
}

const quote = (s: string): string => JSON.stringify(s);

function renderValue(value: HclValue, indent: string): string {
  if (typeof value === "string") return quote(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if ("heredoc" in value) {
    const body = value.heredoc
      .split("\n")
      .map((line) => (line === "" ? "" : `${indent}  ${line}`))
      .join("\n");
    return `<<-EOT\n${body}\n${indent}EOT`;
  }
  const list = value as readonly string[];
  if (list.length <= 2) return `[${list.map(quote).join(", ")}]`;
  return `[\n${list.map((s) => `${indent}  ${quote(s)},`).join("\n")}\n${indent}]`;
}

function renderAttrs(attrs: readonly (readonly [string, HclValue])[], indent: string): string[] {
  const width = Math.max(...attrs.map(([k]) => k.length));
  return attrs.map(([key, value]) => `${indent}${key.padEnd(width)} = ${renderValue(value, indent)}`);
}

function renderComment(comment: string, indent: string): string[] {
  return comment.split("\n").map((line) => `${indent}#${line === "" ? "" : ` ${line}`}`);
}

function renderBlock(block: HclBlock, indent: string): string[] {
  const lines: string[] = [];
  if (block.comment) lines.push(...renderComment(block.comment, indent));
  const labels = (block.labels ?? []).map(quote).join(" ");
  lines.push(`${indent}${block.type}${labels ? ` ${labels}` : ""} {`);
  const inner = `${indent}  `;
  const parts: string[][] = [];
  if (block.attrs && block.attrs.length > 0) parts.push(renderAttrs(block.attrs, inner));
  for (const child of block.blocks ?? []) parts.push(renderBlock(child, inner));
  parts.forEach((part, i) => {
    if (i > 0) lines.push("");
    lines.push(...part);
  });
  lines.push(`${indent}}`);
  return lines;
}

export function renderHcl(file: HclFile): string {
  const lines = renderComment(`${file.header}\n\n${GENERATED_NOTICE}`, "");
  lines.push("");
  if (file.attrs) lines.push(...renderAttrs(file.attrs, ""), "");
  file.blocks.forEach((block, i) => {
    if (i > 0) lines.push("");
    lines.push(...renderBlock(block, ""));
  });
  return `${lines.join("\n")}\n`;
}

/** Where Nomad mounts the plugin directory inside the task; the plugin serves `<mount_dir>/csi.sock`. */
export const NOMAD_MOUNT_DIR = "/csi";
export const NOMAD_CONTROLLER_JOB = "do-csi-controller";
export const NOMAD_NODE_JOB = "do-csi-node";

function pluginTask(
  config: DeployConfig,
  type: "controller" | "node",
  args: string[],
  extra: { config?: (readonly [string, HclValue])[]; configBlocks?: HclBlock[]; blocks?: HclBlock[] },
): HclBlock {
  return {
    type: "task",
    labels: ["plugin"],
    attrs: [["driver", "docker"]],
    blocks: [
      {
        type: "config",
        attrs: [
          ["image", config.image],
          ["args", [`--endpoint=unix://${NOMAD_MOUNT_DIR}/${SOCKET_FILE}`, ...args]],
          ...(extra.config ?? []),
        ],
        blocks: extra.configBlocks ?? [],
      },
      ...(extra.blocks ?? []),
      {
        type: "csi_plugin",
        comment: "The plugin id is what volumes name in plugin_id: the driver name.",
        attrs: [
          ["id", config.driverName],
          ["type", type],
          ["mount_dir", NOMAD_MOUNT_DIR],
        ],
      },
      {
        type: "resources",
        attrs: [
          ["cpu", 100],
          ["memory", 128],
        ],
      },
    ],
  };
}

export function nomadFiles(config: DeployConfig, root: string): HclFile[] {
  const commonArgs = [`--driver-name=${config.driverName}`, `--url=${API_URL}`];
  return [
    {
      path: `${root}/controller.nomad.hcl`,
      header: `Controller plugin of do-csi-plugin on Nomad (DigitalOcean backend): creates, attaches, resizes and snapshots volumes.
Store the API token in a Nomad variable first:
  nomad var put nomad/jobs/${NOMAD_CONTROLLER_JOB} access_token=<DigitalOcean API token>
  nomad job run ${root}/controller.nomad.hcl`,
      blocks: [
        {
          type: "job",
          labels: [NOMAD_CONTROLLER_JOB],
          attrs: [["type", "service"]],
          blocks: [
            {
              type: "group",
              labels: ["controller"],
              comment: "One controller: the plugin has no leader election of its own.",
              attrs: [["count", 1]],
              blocks: [
                pluginTask(config, "controller", ["--mode=controller", ...commonArgs, "--default-volumes-page-size=200"], {
                  blocks: [
                    {
                      type: "template",
                      comment: `The token reaches the plugin as ${TOKEN_ENV} (read by --token), never on its command line.`,
                      attrs: [
                        [
                          "data",
                          { heredoc: `{{ with nomadVar "nomad/jobs/${NOMAD_CONTROLLER_JOB}" }}${TOKEN_ENV}={{ .access_token }}{{ end }}` },
                        ],
                        ["destination", "secrets/token.env"],
                        ["env", true],
                      ],
                    },
                  ],
                }),
              ],
            },
          ],
        },
      ],
    },
    {
      path: `${root}/node.nomad.hcl`,
      header: `Node plugin of do-csi-plugin on Nomad (DigitalOcean backend): formats, mounts and grows volumes on every client.
The Docker driver must allow privileged containers and host bind mounts:
  plugin "docker" { config { allow_privileged = true  volumes { enabled = true } } }
  nomad job run ${root}/node.nomad.hcl`,
      blocks: [
        {
          type: "job",
          labels: [NOMAD_NODE_JOB],
          attrs: [["type", "system"]],
          blocks: [
            {
              type: "group",
              labels: ["node"],
              blocks: [
                pluginTask(config, "node", ["--mode=node", ...commonArgs], {
                  config: [
                    ["privileged", true],
                    // The droplet metadata service (node id, region) answers on the host network.
                    ["network_mode", "host"],
                  ],
                  configBlocks: [
                    {
                      type: "mount",
                      comment: "The host's /dev: volumes attached after the task started appear there (with their /dev/disk/by-id links).",
                      attrs: [
                        ["type", "bind"],
                        ["source", "/dev"],
                        ["target", "/dev"],
                      ],
                    },
                  ],
                }),
              ],
            },
          ],
        },
      ],
    },
    {
      path: `${root}/volume.hcl`,
      header: `A volume for the plugin above, created on DigitalOcean by the controller:
  nomad volume create ${root}/volume.hcl
then claimed by a job with: volume "data" { type = "csi", source = "data", access_mode = "single-node-writer", attachment_mode = "file-system" }`,
      attrs: [
        ["id", "data"],
        ["name", "data"],
        ["type", "csi"],
        ["plugin_id", config.driverName],
        ["capacity_min", "10GiB"],
        ["capacity_max", "20GiB"],
      ],
      blocks: [
        {
          type: "capability",
          attrs: [
            ["access_mode", "single-node-writer"],
            ["attachment_mode", "file-system"],
          ],
        },
        { type: "mount_options", attrs: [["fs_type", "ext4"]] },
      ],
    },
  ];
}
