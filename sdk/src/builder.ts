// One place says what a controller watches: the object it reconciles (for),
// and the other objects whose changes map to its keys (watches), as
// controller-runtime's builder does. A map is applied to the old and the new
// object of an update, so a change that moves an object from one key to
// another reaches both.
import { Controller, type ReconcileFn } from "./controller.ts";
import type { Informer, InformerEvent } from "./informer.ts";
import type { Manager } from "./manager.ts";
import { type KubeObject, objectKey } from "./resource.ts";

/** The keys an object's change concerns (none: undefined or []). */
export type MapFn<T> = (obj: T) => string[] | string | undefined;

const asList = (k: string[] | string | undefined): string[] => (k === undefined ? [] : Array.isArray(k) ? k : [k]);

/** The keys of an event, the map applied to the old and the new object of an update. */
export function mappedKeys<T>(ev: InformerEvent<T>, map: MapFn<T>): string[] {
  const keys = asList(map(ev.obj));
  if (ev.type === "update") for (const k of asList(map(ev.old))) if (!keys.includes(k)) keys.push(k);
  return keys;
}

export class ControllerBuilder {
  private readonly mgr: Manager;
  private readonly controller: Controller;

  constructor(mgr: Manager, name: string, reconcile: ReconcileFn, opts: { concurrency?: number } = {}) {
    this.mgr = mgr;
    this.controller = new Controller({
      name,
      reconcile,
      concurrency: opts.concurrency,
      logger: mgr.log,
      metrics: mgr.metrics,
    });
  }

  /** The kind this controller reconciles: each object's own key. */
  for<T extends KubeObject>(informer: Informer<T>): this {
    this.controller.watch(informer, (ev) => objectKey(ev.obj));
    return this;
  }

  /** Another kind whose objects map to keys of this controller (old and new, on an update). */
  watches<T extends KubeObject>(informer: Informer<T>, map: MapFn<T>): this {
    this.controller.watch(informer, (ev) => mappedKeys(ev, map));
    return this;
  }

  /** Where the kind of event matters (a deletion frees room, for example): the event itself. */
  watchesEvents<T extends KubeObject>(
    informer: Informer<T>,
    map: (ev: InformerEvent<T>) => string[] | string | undefined,
  ): this {
    this.controller.watch(informer, map);
    return this;
  }

  /** Adds the controller to the manager, which runs it while it leads. */
  complete(): Controller {
    this.mgr.add(this.controller);
    return this.controller;
  }
}
