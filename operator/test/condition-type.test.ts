// One shape of condition: the API's (crds, from its zod schema) and the SDK's
// (Kubernetes' metav1.Condition, which the SDK cannot import from the API) are
// the same type, so conditions pass between them without a cast. The checks
// are made by the type checker (npm test runs tsc); the test keeps them run.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Condition as ApiCondition } from "@kubexen/crds";
import type { Condition as SdkCondition } from "@kubexen/sdk";

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same: Same<ApiCondition, SdkCondition> = true;

describe("Condition", () => {
  it("is one type for the API and the SDK", () => {
    assert.equal(same, true);
  });
});
