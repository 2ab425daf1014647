import { setTimeout as sleep } from "node:timers/promises";
import { fail, verify, type Check } from "../check.js";
import { expectOk } from "../expect.js";
import { ExpansionType, NodeCap, ControllerCap, PluginService, pluginServiceName, expansionName } from "../profile.js";
import { mapProblem, pluginNameProblems } from "../spec-rules.js";

const group = "Identity" as const;

function duplicates(values: readonly number[]): number[] {
  return values.filter((v, i) => values.indexOf(v) !== i);
}

export const identityChecks: Check[] = [
  {
    id: "identity.plugin-info",
    group,
    title: "GetPluginInfo returns a valid name and a vendor_version",
    level: "MUST",
    rule: "name MUST follow domain name notation, be 63 characters or less, begin and end alphanumeric with '-', '.' and alphanumerics between (REQUIRED); vendor_version is REQUIRED",
    async run(run) {
      const info = await expectOk("GetPluginInfo", run.identity.getPluginInfo({}, run.call()));
      const problems = pluginNameProblems(info.name);
      verify(problems.length === 0, `plugin name ${JSON.stringify(info.name)}: ${problems.join("; ")}`);
      verify(info.vendorVersion !== "", "vendor_version is empty (REQUIRED)");
      const manifest = mapProblem("manifest", info.manifest);
      verify(manifest === undefined, manifest ?? "");
    },
  },
  {
    id: "identity.same-everywhere",
    group,
    title: "GetPluginInfo and GetPluginCapabilities answer the same on every call and every endpoint",
    level: "MUST",
    rule: "All instances of the same version of the Plugin SHALL return the same set of capabilities, regardless of which RPCs an instance is serving",
    async run(run) {
      const endpoints = [{ label: run.clients.endpoint, client: run.identity }];
      if (run.clients.controllerEndpoint !== run.clients.endpoint)
        endpoints.push({ label: run.clients.controllerEndpoint, client: run.clients.controllerIdentity });
      let reference: { label: string; text: string } | undefined;
      for (const { label, client } of endpoints) {
        for (let i = 0; i < run.options.idempotentCount; i++) {
          run.step(`GetPluginInfo and GetPluginCapabilities at ${label} (call ${i + 1})`);
          const info = await expectOk(`GetPluginInfo at ${label}`, client.getPluginInfo({}, run.call()));
          const caps = await expectOk(`GetPluginCapabilities at ${label}`, client.getPluginCapabilities({}, run.call()));
          const services = caps.capabilities
            .flatMap((c) => (c.type.case === "service" ? [pluginServiceName(c.type.value.type)] : []))
            .sort();
          const expansion = caps.capabilities
            .flatMap((c) => (c.type.case === "volumeExpansion" ? [expansionName(c.type.value.type)] : []))
            .sort();
          const text = `name=${info.name} version=${info.vendorVersion} services=[${services.join(",")}] expansion=[${expansion.join(",")}]`;
          if (reference === undefined) reference = { label, text };
          else verify(reference.text === text, `${label} answered ${text}, but ${reference.label} answered ${reference.text}`);
        }
      }
    },
  },
  {
    id: "identity.plugin-capabilities",
    group,
    title: "GetPluginCapabilities lists only known capabilities, each once",
    level: "MUST",
    rule: "PluginCapability.Service.Type and VolumeExpansion.Type take the values the spec defines (UNKNOWN is not a capability)",
    async run(run) {
      const caps = await expectOk("GetPluginCapabilities", run.identity.getPluginCapabilities({}, run.call()));
      const services: number[] = [];
      const expansion: number[] = [];
      for (const cap of caps.capabilities) {
        if (cap.type.case === "service") services.push(cap.type.value.type);
        else if (cap.type.case === "volumeExpansion") expansion.push(cap.type.value.type);
        else fail("a capability has neither service nor volume_expansion set");
      }
      const unknownService = services.filter((t) => t === PluginService.UNKNOWN || PluginService[t] === undefined);
      verify(unknownService.length === 0, `unknown service capability value(s): ${unknownService.join(", ")}`);
      const unknownExpansion = expansion.filter((t) => t === ExpansionType.UNKNOWN || ExpansionType[t] === undefined);
      verify(unknownExpansion.length === 0, `unknown volume expansion value(s): ${unknownExpansion.join(", ")}`);
      const dup = [...duplicates(services).map(pluginServiceName), ...duplicates(expansion).map(expansionName)];
      verify(dup.length === 0, `listed more than once: ${dup.join(", ")}`);
    },
  },
  {
    id: "identity.expansion-has-rpc",
    group,
    title: "A VolumeExpansion capability comes with an EXPAND_VOLUME controller or node capability",
    level: "MUST",
    rule: "When a Plugin implements ONLINE/OFFLINE volume expansion it MUST implement either the EXPAND_VOLUME controller capability or the EXPAND_VOLUME node capability",
    skipUnless: (p) => (p.volumeExpansion.size === 0 ? "no VolumeExpansion capability advertised" : undefined),
    async run(run) {
      const { profile } = run;
      const controller = profile.controller.available && profile.controller.caps.has(ControllerCap.EXPAND_VOLUME);
      const node = profile.node.available && profile.node.caps.has(NodeCap.EXPAND_VOLUME);
      if (controller || node) return;
      if (!profile.controller.available || !profile.node.available) {
        run.note("only one of the services could be asked; the other may advertise EXPAND_VOLUME");
        if (!profile.controller.available && !profile.node.available) fail("neither service is reachable");
        return;
      }
      fail(
        `the plugin advertises VolumeExpansion ${[...profile.volumeExpansion].map(expansionName).join(", ")} but neither ControllerGetCapabilities nor NodeGetCapabilities lists EXPAND_VOLUME`,
      );
    },
  },
  {
    id: "identity.probe",
    group,
    title: "Probe succeeds repeatedly and reports ready",
    level: "MUST",
    rule: "A Plugin MUST implement Probe; a healthy, initialized plugin answers OK with ready true or unset",
    async run(run) {
      for (let i = 0; i < run.options.idempotentCount; i++) {
        run.step(`Probe (call ${i + 1})`);
        const answer = await expectOk("Probe", run.identity.probe({}, run.call()));
        if (answer.ready === false) {
          // The runner already waited for readiness; give it a little more before calling it a failure.
          await sleep(2_000);
          const again = await expectOk("Probe", run.identity.probe({}, run.call()));
          verify(again.ready !== false, "Probe keeps answering ready=false");
        }
      }
      if (run.clients.controllerEndpoint !== run.clients.endpoint) {
        run.step("Probe at the controller endpoint");
        await expectOk(`Probe at ${run.clients.controllerEndpoint}`, run.clients.controllerIdentity.probe({}, run.call()));
      }
    },
  },
];
