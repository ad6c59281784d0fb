/**
 * @module Public model name → deployments. Several deployments under one `model_name` are
 * used in turn (round robin); a deployment that refuses the connection is skipped for the
 * same request (failover) and the next one is tried.
 */
import type { Deployment } from '../config/load';

export class ModelRouter {
  private readonly groups = new Map<string, Deployment[]>();
  private readonly cursor = new Map<string, number>();

  constructor(deployments: Deployment[]) {
    for (const deployment of deployments) {
      const group = this.groups.get(deployment.modelName) ?? [];
      group.push(deployment);
      this.groups.set(deployment.modelName, group);
    }
  }

  get modelNames(): string[] {
    return [...this.groups.keys()];
  }

  has(model: string): boolean {
    return this.groups.has(model);
  }

  /** The deployment each model would be tried on first now (without moving the rotation). */
  firsts(): Record<string, Deployment> {
    const firsts: Record<string, Deployment> = {};
    for (const [model, group] of this.groups) firsts[model] = group[this.cursor.get(model) ?? 0]!;
    return firsts;
  }

  /** Deployments for a model in the order to try them, rotated for load balancing. */
  candidates(model: string): Deployment[] {
    const group = this.groups.get(model);
    if (!group) return [];
    if (group.length === 1) return group;
    const start = this.cursor.get(model) ?? 0;
    this.cursor.set(model, (start + 1) % group.length);
    return [...group.slice(start), ...group.slice(0, start)];
  }
}
