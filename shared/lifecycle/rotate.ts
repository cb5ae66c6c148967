import { randomUUID } from 'node:crypto';
import { ImportError } from '../errors.js';
import { companyLedgerKey } from '../import-workflow.js';
import type { LedgerEntry, UserKey } from '../ledger.js';
import type { AuthImport, ImportPlan } from '../plan.js';
import { withRetry } from '../retry.js';
import { renderTemplate } from '../template.js';
import type { LifecycleDeps, LifecycleOutcome } from './index.js';
import { leaseUser, tooLateToStart } from './lease.js';
import type { LifecycleMessage } from './message.js';

/**
 * Credential rotation. Tray has no mutation that updates an auth, so a rotation is, per slot:
 *   (a) mark `rotations[slot] = {oldAuthId, sent}` → (b) createUserAuthentication (credentials read
 *   from Secrets Manager now) → (c) record newAuthId → (d) updateSolutionInstance(authValues) →
 *   (e) record repointed + authIds[slot] → (f) removeAuthentication(old) → (g) drop the mark.
 * The instance points at the old auth until (d) and at the new one from then on: it is never
 * without a working auth. The old auth is removed only once the ledger says the instance left it.
 *
 * After a crash, the marks say where to resume: a mark without an id means the create may have
 * happened, so the user's auths are searched for exactly the name that was sent (which differs
 * from the old auth's name, so the old auth can never be adopted); a mark with an id but not
 * repointed re-sends the repoint (same values again change nothing).
 *
 * Every slot of a run is marked in one write before the first create, and `lastRotatedAt` is
 * written with the last mark's removal: it holds when this run's marks were written, i.e. the
 * earliest moment its credentials were read. A message whose `requestedAt` is not later than
 * `lastRotatedAt` is already satisfied (a secret-change fan-out delivered twice rotates nobody
 * twice). `lastRotatedAt` is per user, not per slot: see docs/operators.md.
 */
export interface RotateDeps extends LifecycleDeps {
  /**
   * The user's Cognito attributes, for credential fields the plan takes from an attribute other
   * than sub, username or email (the ledger holds those three). The worker has none: such a plan
   * rotates from the CLI (`rotate --now`), which reads Cognito.
   */
  userAttributes?: (key: UserKey) => Promise<Record<string, string>>;
  onStep?: (step: RotateStep) => void;
}

export type RotateStep =
  | { type: 'marked'; slot: string; sent: string }
  | { type: 'created' | 'adopted'; slot: string; authId: string }
  | { type: 'repointed'; slot: string; authId: string }
  | { type: 'removedOld'; slot: string; authId: string; answer: 'removed' | 'gone' };

/** The slots a rotation covers by default: every auth whose credentials read a Secrets Manager secret. */
export function secretSlots(plan: ImportPlan): string[] {
  return plan.auths.filter((a) => Object.values(a.data).some((s) => s.secret !== undefined)).map((a) => a.externalId);
}

/** The slots of the plan whose credentials read `secretId` (a name or an ARN; a per-user template matches its prefix). */
export function slotsReadingSecret(plan: ImportPlan, secretName: string): { slots: string[]; perUser: boolean } {
  const slots = new Set<string>();
  let perUser = false;
  for (const auth of plan.auths) {
    for (const source of Object.values(auth.data)) {
      const ref = source.secret;
      if (!ref) continue;
      if (ref.secretId !== undefined && sameSecret(ref.secretId, secretName)) slots.add(auth.externalId);
      const prefix = ref.secretIdTemplate?.split('{{')[0];
      if (prefix && secretName.startsWith(stripArn(prefix))) {
        slots.add(auth.externalId);
        perUser = true;
      }
    }
  }
  return { slots: [...slots], perUser };
}

/** A secret name from a name or ARN, without the ARN's random "-xxxxxx" suffix. */
function stripArn(idOrArn: string): string {
  const at = idOrArn.indexOf(':secret:');
  return idOrArn.startsWith('arn:') && at >= 0 ? idOrArn.slice(at + ':secret:'.length) : idOrArn;
}

function sameSecret(planId: string, eventName: string): boolean {
  const a = stripArn(planId);
  const b = stripArn(eventName);
  // An ARN carries "-xxxxxx" after the name; the plan may name the secret either way.
  return a === b || a.replace(/-[A-Za-z0-9]{6}$/, '') === b || b.replace(/-[A-Za-z0-9]{6}$/, '') === a;
}

/** The rotated auth's name: the old one's without an earlier rotation suffix, plus when, so it never equals the old name. */
export function rotatedName(oldName: string, at: Date): string {
  const base = oldName.replace(/ \(rotated [0-9TZ:-]+\)$/, '');
  return `${base} (rotated ${at.toISOString().slice(0, 19)}Z)`;
}

export async function rotateUser(message: LifecycleMessage, deps: RotateDeps): Promise<LifecycleOutcome> {
  const { plan } = deps;
  const requested = message.slots ?? secretSlots(plan);
  const unknown = requested.filter((s) => !plan.auths.some((a) => a.externalId === s));
  if (unknown.length > 0) {
    throw new ImportError(
      'PLAN_INVALID',
      'plan',
      `rotate: slot${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `"${s}"`).join(', ')} not in the plan's auths (it has: ${plan.auths.map((a) => a.externalId).join(', ')}); pass an auth's externalId`,
    );
  }
  if (requested.length === 0) return { outcome: 'skipped', reason: 'no auth slot of the plan reads Secrets Manager: nothing to rotate' };
  const tooLate = tooLateToStart(deps, 'rotation');
  if (tooLate) return tooLate;

  const memberKey: UserKey = { userPoolId: message.userPoolId, sub: message.sub };
  let key = memberKey;
  // Whose attributes a credential field or a per-user secret id renders from: the message's user
  // (for a company, the member asking, as its first member's were at the import).
  let identity: Identity | undefined;
  if (plan.trayUserPer === 'company') {
    // The Tray objects are the company's: rotate its entry (one rotation serves every member).
    const member = await deps.ledger.get(memberKey);
    if (!member) return { outcome: 'skipped', reason: 'no ledger entry for this user' };
    if (member.status === 'offboarded') return { outcome: 'skipped', reason: 'user is offboarded', entry: member };
    const company = member.company?.slice(member.company.indexOf('/') + 1);
    if (!company) return { outcome: 'skipped', reason: 'user is not a member of an imported company yet', entry: member };
    key = companyLedgerKey(message.userPoolId, company);
    identity = { sub: member.sub, username: member.username, email: member.email };
  }

  const owner = randomUUID();
  const lease = await leaseUser(deps, key, owner);
  if (lease.kind === 'busy') return lease.outcome;
  if (lease.kind === 'missing') return { outcome: 'skipped', reason: 'no ledger entry for this user' };
  if (lease.kind === 'offboarded') return { outcome: 'skipped', reason: 'user is offboarded', entry: lease.entry };

  // Per-company plans: the members' entries keep a copy of the company's ids from their import
  // (shared/ledger.ts recordMember); the company's entry is the one that is current.
  const run = new Rotation(
    deps,
    key,
    owner,
    lease.entry,
    identity ?? { sub: lease.entry.sub, username: lease.entry.username, email: lease.entry.email },
  );
  try {
    return await run.execute(message, requested);
  } finally {
    // The lease is released on every path: a failure is retried by SQS, and the marks say where to resume.
    await deps.ledger.release(key, owner).catch(() => undefined);
  }
}

/** The attributes the ledger holds for a user. */
type Identity = { sub: string; username: string; email?: string | undefined };

class Rotation {
  private userToken: string | undefined;
  /** Slots marked by this run: their create cannot have happened before, so no look-up is needed. */
  private readonly markedNow = new Set<string>();
  private attributes: Record<string, string> | undefined;

  constructor(
    private readonly deps: RotateDeps,
    private readonly key: UserKey,
    private readonly owner: string,
    private entry: LedgerEntry,
    private readonly identity: Identity,
  ) {}

  async execute(message: LifecycleMessage, requested: string[]): Promise<LifecycleOutcome> {
    const entry = this.entry;
    const resuming = Object.keys(entry.rotations);
    if (resuming.length === 0) {
      if (entry.status !== 'enabled' || !entry.trayUserId || !entry.instanceId) {
        return { outcome: 'skipped', reason: `user is ${entry.status}, not enabled yet: its import reads the current secret`, entry };
      }
      if (entry.lastRotatedAt !== undefined && Date.parse(entry.lastRotatedAt) >= Date.parse(message.requestedAt)) {
        return {
          outcome: 'skipped',
          reason: `already rotated at ${entry.lastRotatedAt}, after this request (${message.requestedAt})`,
          entry,
        };
      }
    }
    this.userToken = await this.deps.tray.authorize(entry.trayUserId as string);

    const done: string[] = [];
    if (resuming.length > 0) {
      // A crashed run first: its marks say exactly what may exist in Tray. It satisfies this
      // message only if it began after the request (its credentials were read after the change).
      await this.runSlots(resuming);
      const after = this.entry.lastRotatedAt !== undefined && Date.parse(this.entry.lastRotatedAt) >= Date.parse(message.requestedAt);
      if (after) done.push(...resuming);
      if (requested.every((s) => done.includes(s))) {
        return { outcome: 'done', entry: this.entry, detail: `resumed and finished the rotation of ${resuming.join(', ')}` };
      }
    }
    const slots = requested.filter((s) => !done.includes(s) && this.entry.authIds[s] !== undefined);
    if (slots.length === 0) return { outcome: 'skipped', reason: 'no requested slot has an auth yet', entry: this.entry };
    await this.mark(slots);
    await this.runSlots(slots);
    return { outcome: 'done', entry: this.entry, detail: `rotated ${[...done, ...slots].join(', ')}` };
  }

  /** (a) for every slot in one write, before any create: a crash then resumes exactly these slots and no others. */
  private async mark(slots: string[]): Promise<void> {
    const auths = await this.asUser((t) => this.deps.tray.listAuthentications(t));
    const now = new Date();
    const at = now.toISOString();
    const rotations = { ...this.entry.rotations };
    for (const slot of slots) {
      const oldAuthId = this.entry.authIds[slot] as string;
      const oldName = auths.find((a) => a.id === oldAuthId)?.name ?? slot;
      rotations[slot] = { oldAuthId, sent: rotatedName(oldName, now), at, repointed: false };
      this.markedNow.add(slot);
      this.emit({ type: 'marked', slot, sent: rotations[slot].sent });
    }
    // The whole map in one write: an entry imported before rotations existed has no map to set a path in.
    this.entry = await this.deps.ledger.writeLeased(this.key, this.owner, 'SET rotations = :r, updatedAt = :at', {}, { ':r': rotations });
  }

  private async runSlots(slots: string[]): Promise<void> {
    const earliest = slots.map((s) => this.entry.rotations[s]?.at ?? new Date().toISOString()).sort()[0] as string;
    for (const [i, slot] of slots.entries()) await this.runSlot(slot, i === slots.length - 1 ? earliest : undefined);
  }

  private async runSlot(slot: string, lastRotatedAt: string | undefined): Promise<void> {
    const { ledger, tray } = this.deps;
    const auth = this.deps.plan.auths.find((a) => a.externalId === slot);
    if (!auth)
      throw new ImportError(
        'PLAN_INVALID',
        'plan',
        `a rotation of slot "${slot}" is in progress but the plan has no such auth; restore it to finish`,
      );
    let r = this.entry.rotations[slot]!;

    // (b)+(c)
    let newAuthId = r.newAuthId;
    if (newAuthId === undefined) {
      newAuthId = await this.ensureNewAuth(slot, auth, r);
      this.entry = await ledger.writeLeased(
        this.key,
        this.owner,
        'SET rotations.#slot.newAuthId = :id, updatedAt = :at',
        { '#slot': slot },
        { ':id': newAuthId },
      );
      r = this.entry.rotations[slot]!;
    }

    // (d)+(e)
    if (!r.repointed) {
      const authValues = this.deps.plan.auths
        .filter((a) => a.externalId === slot || this.entry.authIds[a.externalId] !== undefined)
        .map((a) => ({
          externalId: a.externalId,
          authId: a.externalId === slot ? newAuthId : (this.entry.authIds[a.externalId] as string),
        }));
      await this.asUser((t) => tray.repointSolutionInstance(t, this.entry.instanceId as string, authValues));
      this.entry = await ledger.writeLeased(
        this.key,
        this.owner,
        'SET rotations.#slot.repointed = :true, authIds.#slot = :id, updatedAt = :at',
        { '#slot': slot },
        { ':true': true, ':id': newAuthId },
      );
      this.emit({ type: 'repointed', slot, authId: newAuthId });
    }

    // (f): only once the ledger says the instance left the old auth.
    const answer = await this.asUser((t) => tray.removeAuthentication(t, r.oldAuthId));
    this.emit({ type: 'removedOld', slot, authId: r.oldAuthId, answer });

    // (g)
    this.entry = await ledger.writeLeased(
      this.key,
      this.owner,
      `REMOVE rotations.#slot SET updatedAt = :at${lastRotatedAt ? ', lastRotatedAt = :rotated' : ''}`,
      { '#slot': slot },
      lastRotatedAt ? { ':rotated': lastRotatedAt } : {},
    );
  }

  /**
   * The new auth: adopted when a create may already have happened (a mark from an earlier run, or
   * an ambiguous failure in this one), matching exactly the name that was sent and never the old
   * auth or one recorded for another slot; created otherwise.
   */
  private ensureNewAuth(slot: string, auth: AuthImport, r: LedgerEntry['rotations'][string]): Promise<string> {
    const { tray } = this.deps;
    let mayExist = !this.markedNow.has(slot);
    return withRetry(
      'createUserAuthentication',
      {
        maxAttempts: 4,
        baseDelayMs: 200,
        maxDelayMs: 2_000,
        deadline: this.deps.deadline ?? Number.POSITIVE_INFINITY,
        attemptBudgetMs: (this.deps.callTimeoutMs ?? 10_000) * 2,
        shouldRetry: (error) => error.ambiguous,
      },
      async () => {
        if (mayExist) {
          const taken = new Set([r.oldAuthId, ...Object.values(this.entry.authIds)]);
          const found = (await this.asUser((t) => tray.listAuthentications(t))).find(
            (a) =>
              !taken.has(a.id) &&
              a.name === r.sent &&
              (a.service?.id === undefined || a.service.id === auth.serviceId) &&
              (a.serviceEnvironment?.id === undefined || a.serviceEnvironment.id === auth.serviceEnvironmentId),
          );
          if (found) {
            this.emit({ type: 'adopted', slot, authId: found.id });
            return found.id;
          }
        }
        const data = await this.credentials(auth);
        mayExist = true;
        const id = await this.asUser((t) =>
          tray.createUserAuthentication(t, {
            name: r.sent,
            serviceId: auth.serviceId,
            serviceEnvironmentId: auth.serviceEnvironmentId,
            data,
            formData: auth.formData,
            scopes: auth.scopes,
            hidden: auth.hidden,
          }),
        );
        this.emit({ type: 'created', slot, authId: id });
        return id;
      },
    );
  }

  /** Credential fields, secrets read fresh (the SecretReader's cache may hold the value being replaced). */
  private async credentials(auth: AuthImport): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [field, source] of Object.entries(auth.data)) {
      if (source.literal !== undefined) out[field] = source.literal;
      else if (source.attribute !== undefined) out[field] = await this.attribute(source.attribute, auth.externalId, field);
      else {
        const ref = source.secret!;
        const secretId = ref.secretId ?? this.render(ref.secretIdTemplate!);
        out[field] = await this.deps.secrets.field(secretId, ref.field, { fresh: true });
      }
    }
    return out;
  }

  private render(template: string): string {
    // Per-user templates use only {{sub}} (shared/plan.ts).
    const result = renderTemplate(template, { sub: this.identity.sub });
    if (!result.ok) throw new ImportError('PLAN_INVALID', 'plan', `cannot render secret id template "${template}" for a rotation`);
    return result.value;
  }

  private async attribute(name: string, slot: string, field: string): Promise<string> {
    // The attributes the import message carried (ledger `attributes`), then sub, username, email.
    const known: Record<string, string | undefined> = { ...this.entry.attributes, ...this.identity };
    if (Object.hasOwn(known, name) && known[name] !== undefined) return known[name];
    if (this.deps.userAttributes) this.attributes ??= await this.deps.userAttributes(this.key);
    const value = this.attributes && Object.hasOwn(this.attributes, name) ? this.attributes[name] : undefined;
    if (value === undefined) {
      throw new ImportError(
        'MISSING_ATTRIBUTE',
        'plan',
        `rotate: slot "${slot}" field "${field}" comes from attribute "${name}", which the ledger does not hold for this user (it keeps sub, username, email and the attributes the import message carried); run "rotate --user ${this.identity.sub} --now", which reads Cognito, or source the field from the secret`,
      );
    }
    return value;
  }

  private async asUser<T>(call: (token: string) => Promise<T>): Promise<T> {
    try {
      return await call(this.userToken as string);
    } catch (e) {
      if (!(e instanceof ImportError) || e.code !== 'TRAY_UNAUTHORIZED') throw e;
      this.userToken = await this.deps.tray.authorize(this.entry.trayUserId as string);
      return call(this.userToken);
    }
  }

  private emit(step: RotateStep): void {
    this.deps.onStep?.(step);
  }
}
