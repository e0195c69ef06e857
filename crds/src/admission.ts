// Admission policies that belong with the CRDs. One for now: the finalizer
// that holds a deleted XenDomain until its domain is gone from its host is
// set as the object is created, in the API server (a MutatingAdmissionPolicy,
// GA in Kubernetes 1.36), instead of by a second write from the scheduler:
// one write fewer per domain, and one event fewer for every watcher. The
// finalizer is owned by no field manager, so a GitOps tool's next apply
// keeps it. Without the policy (older clusters) the scheduler adds it.

/** Holds a deleted XenDomain until its domain has stopped on its host (or was never bound). */
export const DOMAIN_FINALIZER = "kubexen.io/domain";

const POLICY = "kubexen-domain-finalizer";

/** The policy and its binding, as API objects. */
export function domainFinalizerPolicy(labels: Record<string, string>): object[] {
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingAdmissionPolicy",
      metadata: { name: POLICY, labels },
      spec: {
        // A policy that cannot run must not block creating domains: the scheduler adds the finalizer then.
        failurePolicy: "Ignore",
        reinvocationPolicy: "Never",
        matchConstraints: {
          resourceRules: [
            { apiGroups: ["kubexen.io"], apiVersions: ["*"], operations: ["CREATE"], resources: ["xendomains"] },
          ],
        },
        matchConditions: [
          {
            name: "no-finalizer-yet",
            expression: `!has(object.metadata.finalizers) || !('${DOMAIN_FINALIZER}' in object.metadata.finalizers)`,
          },
        ],
        mutations: [
          {
            patchType: "JSONPatch",
            jsonPatch: {
              expression: [
                "has(object.metadata.finalizers) ?",
                `[JSONPatch{op: "add", path: "/metadata/finalizers/-", value: "${DOMAIN_FINALIZER}"}] :`,
                `[JSONPatch{op: "add", path: "/metadata/finalizers", value: ["${DOMAIN_FINALIZER}"]}]`,
              ].join(" "),
            },
          },
        ],
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingAdmissionPolicyBinding",
      metadata: { name: POLICY, labels },
      spec: { policyName: POLICY },
    },
  ];
}

/** The API version and kind Helm checks before rendering the policy (clusters before 1.36 lack it). */
export const MUTATING_POLICY_API = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy";
