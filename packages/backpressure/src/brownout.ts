import {
  CallScope,
  type Clock,
  durationMs,
  Emitter,
  finiteNumber,
  Histogram,
  InvalidOptionError,
  type Listener,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  ratio,
  systemClock,
  type Unsubscribe,
} from '@ballast/common';

/** Options of {@link BrownoutController}. */
export interface BrownoutOptions {
  /**
   * The target of the controlled latency: the `percentile` of the samples of each period
   * (response time, queue wait, whatever {@link BrownoutController.record} is fed), ms.
   * @default 500
   */
  setpointMs?: number;
  /** Which percentile of a period's samples is controlled, 0–100 (the paper controls the 95th). @default 95 */
  percentile?: number;
  /**
   * The control period, ms: one measurement and one update of the dimmer per period. Shorter
   * reacts faster but measures fewer samples (a noisier percentile).
   * @default 1000
   */
  periodMs?: number;
  /**
   * The closed-loop pole p₁ in [0, 1): after a step change the error shrinks by this factor
   * each period (0 cancels it in one period, amplifying measurement noise the most). The
   * error of the model's loop shrinks to 5 % in ln 0.05 ÷ ln p₁ periods (13 at 0.8, 28 at
   * 0.9); a latency that grows faster than linearly in θ (a queue near saturation) makes
   * the real loop faster than that, and noisier.
   * @default 0.9
   */
  pole?: number;
  /**
   * Forgetting factor λ of the recursive least-squares estimate of α, in (0, 1]: its memory
   * is about 1 ÷ (1 − λ) periods. A short memory lets the gain follow a load that changes
   * the latency θ buys (the paper's simulator used 0.95; 0.8 recovered from a load step in
   * half the time in our measurements).
   * @default 0.8
   */
  forgetting?: number;
  /** The dimmer θ at start, within the bounds. @default maxLevel (full quality) */
  initialLevel?: number;
  /** Lowest dimmer: never serve less optional work than this share. @default 0 */
  minLevel?: number;
  /** Highest dimmer. @default 1 */
  maxLevel?: number;
  /**
   * α at start: the latency one unit of θ is expected to cost, ms (`latency ≈ α θ`). The
   * estimate replaces it within a period or two.
   * @default setpointMs (the setpoint is reached at full quality)
   */
  initialAlphaMs?: number;
  /**
   * Bounds of the estimate of α, ms. They keep the gain `(1 − p₁) ÷ α` finite when the
   * measurement says little (latency dominated by something the dimmer does not drive).
   * @default [setpointMs ÷ 100, setpointMs × 100]
   */
  alphaBoundsMs?: readonly [min: number, max: number];
  /** Periods with fewer samples than this are skipped (the dimmer holds): too few to read a percentile from. @default 1 */
  minSamples?: number;
  /**
   * What a period without a single sample does: `'hold'` keeps θ where it is (nothing was
   * measured); `'raise'` takes it as a latency of 0 — no traffic, nothing to protect — and
   * moves θ up by the control law (`(1 − p₁) ÷ α · setpoint`; the estimate of α is left
   * alone), so a service that was dimmed when its traffic stopped serves full quality again
   * when traffic returns, instead of starting its next burst dimmed.
   * @default 'hold'
   */
  whenIdle?: 'hold' | 'raise';
  /**
   * Runs the control loop on its own timer (unref'd) every `periodMs`. Turn it off to drive
   * the loop yourself with {@link BrownoutController.update} (a simulation, a test).
   * @default true
   */
  autoUpdate?: boolean;
  /** Random source in [0, 1), for {@link BrownoutController.shouldServeOptional}. @default Math.random */
  random?: () => number;
  /** Monotonic clock, for the latency {@link BrownoutController.execute} measures. @default systemClock */
  clock?: Clock;
  /** A name for events and metrics. @default 'default' */
  name?: string;
}

/** Events of a {@link BrownoutController}. */
export interface BrownoutEvents {
  /** One control step ran: the dimmer moved (or stayed, at a bound). */
  update: {
    name: string;
    /** θ after the step. */
    level: number;
    /** θ during the period just measured. */
    previousLevel: number;
    /** The controlled percentile of the period, ms. */
    measuredMs: number;
    setpointMs: number;
    /** `setpointMs − measuredMs`. */
    errorMs: number;
    /** The estimate of α after the step, ms per unit of θ. */
    alphaMs: number;
    /** Samples measured in the period (0: an idle period taken as latency 0, `whenIdle: 'raise'`). */
    samples: number;
    /** True when θ was held at `minLevel` or `maxLevel`. */
    saturated: boolean;
  };
  /** A period passed with fewer than `minSamples` samples: nothing to measure, the dimmer holds. */
  hold: { name: string; level: number; samples: number };
}

/** A snapshot of a {@link BrownoutController}. */
export interface BrownoutStats {
  name: string;
  /** The dimmer θ: the share of optional work served, 0–1. */
  level: number;
  setpointMs: number;
  /** The controlled percentile of the last period measured, ms (NaN before the first). */
  measuredMs: number;
  /** The current estimate of α, ms per unit of θ. */
  alphaMs: number;
  /** Control steps run (periods with enough samples). */
  updates: number;
  /** Periods skipped for lack of samples. */
  holds: number;
  /** Samples recorded in the period under way. */
  pendingSamples: number;
  /** Calls of {@link BrownoutController.shouldServeOptional} answered yes / no, since creation. */
  optionalServed: number;
  optionalSkipped: number;
}

/** What {@link BrownoutController.execute} hands `fn`: the policy context, plus the dimmer's decision for this call. */
export interface BrownoutContext extends PolicyContext {
  /** The dimmer θ when the call started. */
  readonly level: number;
  /** Whether this call serves its optional work: drawn once, with probability θ. */
  readonly optional: boolean;
}

/** Covariance bound of the estimator: while θ sits at 0 the regressor carries no information, and an unbounded covariance would make the next sample swing α. */
const MAX_COVARIANCE = 1e6;
/** θ below this says nothing about α (latency ≈ α θ ≈ 0): the estimate is frozen. */
const MIN_EXCITATION = 1e-3;

/**
 * A brownout dimmer (Klein, Maggio, Årzén, Hernández-Rodriguez, "Brownout: Building More
 * Robust Cloud Applications", ICSE 2014): θ ∈ [0, 1] is the share of optional work a
 * service does, driven by a feedback loop that keeps a percentile of a measured latency
 * at a setpoint. Under overload θ falls and the service does less optional work (fewer
 * recommendations, cheaper encodings, fewer renditions) instead of turning requests away;
 * as load falls θ returns to 1.
 *
 * The loop is the paper's adaptive controller. The latency of period k+1 is modelled as
 * `t(k+1) = α(k) θ(k) + δt(k)`, α estimated each period by recursive least squares with
 * forgetting factor λ; the control law
 * `θ(k+1) = θ(k) + (1 − p₁) ÷ α(k) · e(k+1)`, `e = t̄ − t`,
 * places the closed-loop pole at p₁ (`t` follows the setpoint `t̄` as `(1 − p₁) ÷ (z − p₁)`).
 * θ is clamped to `[minLevel, maxLevel]`; the law is incremental, so its integral state is
 * θ itself and cannot wind up past a bound, and the estimator is frozen while θ carries no
 * information (θ ≈ 0) and its covariance is bounded, so it cannot wind up either.
 *
 * @example
 * ```ts
 * const dimmer = new BrownoutController({ setpointMs: 300 });
 * app.get('/product/:id', async (c) => {
 *   const started = performance.now();
 *   const page = await product(c.req.param('id'), { recommendations: dimmer.shouldServeOptional() });
 *   dimmer.record(performance.now() - started);
 *   return c.json(page);
 * });
 * ```
 */
export class BrownoutController implements Policy<unknown, BrownoutContext>, Disposable {
  /** The name given in the options. */
  readonly name: string;
  readonly setpointMs: number;
  readonly periodMs: number;
  readonly #percentile: number;
  readonly #pole: number;
  readonly #forgetting: number;
  readonly #min: number;
  readonly #max: number;
  readonly #alphaMin: number;
  readonly #alphaMax: number;
  readonly #minSamples: number;
  readonly #raiseWhenIdle: boolean;
  readonly #random: () => number;
  /** The clock latencies are measured on (the `clock` option). */
  readonly clock: Clock;
  readonly #events = new Emitter<BrownoutEvents>();
  readonly #samples = new Histogram(0.01);
  #level: number;
  #alpha: number;
  #covariance = 1000;
  #measured = Number.NaN;
  #updates = 0;
  #holds = 0;
  #served = 0;
  #skipped = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: BrownoutOptions = {}) {
    this.setpointMs = finiteNumber('setpointMs', options.setpointMs ?? 500, { min: Number.MIN_VALUE });
    this.#percentile = finiteNumber('percentile', options.percentile ?? 95, { min: 0, max: 100 });
    this.periodMs = durationMs('periodMs', options.periodMs ?? 1000, { min: 1 });
    this.#pole = finiteNumber('pole', options.pole ?? 0.9, { min: 0, max: 1 - Number.EPSILON });
    this.#forgetting = ratio('forgetting', options.forgetting ?? 0.8, { min: 0.01 });
    this.#min = ratio('minLevel', options.minLevel ?? 0);
    this.#max = ratio('maxLevel', options.maxLevel ?? 1);
    if (this.#max < this.#min) throw new InvalidOptionError('maxLevel', `a share >= minLevel (${this.#min})`, this.#max);
    this.#level = finiteNumber('initialLevel', options.initialLevel ?? this.#max, { min: this.#min, max: this.#max });
    const bounds = options.alphaBoundsMs ?? [this.setpointMs / 100, this.setpointMs * 100];
    if (!Array.isArray(bounds) || bounds.length !== 2) throw new InvalidOptionError('alphaBoundsMs', 'a pair [min, max] of ms', bounds);
    this.#alphaMin = finiteNumber('alphaBoundsMs[0]', bounds[0], { min: Number.MIN_VALUE });
    this.#alphaMax = finiteNumber('alphaBoundsMs[1]', bounds[1], { min: this.#alphaMin });
    this.#alpha = finiteNumber('initialAlphaMs', options.initialAlphaMs ?? clamp(this.setpointMs, this.#alphaMin, this.#alphaMax), {
      min: this.#alphaMin,
      max: this.#alphaMax,
    });
    this.#minSamples = finiteNumber('minSamples', options.minSamples ?? 1, { min: 1 });
    const whenIdle = options.whenIdle ?? 'hold';
    if (whenIdle !== 'hold' && whenIdle !== 'raise') throw new InvalidOptionError('whenIdle', "'hold' or 'raise'", whenIdle);
    this.#raiseWhenIdle = whenIdle === 'raise';
    this.#random = options.random ?? Math.random;
    this.clock = options.clock ?? systemClock;
    this.name = options.name ?? 'default';
    if (typeof this.#random !== 'function') throw new InvalidOptionError('random', 'a function', this.#random);
    if (options.autoUpdate ?? true) {
      this.#timer = setInterval(() => this.update(), this.periodMs);
      this.#timer.unref?.();
    }
  }

  /** The dimmer θ: the share of optional work to serve now, 0–1 (1: everything, full quality). */
  get level(): number {
    return this.#level;
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof BrownoutEvents>(event: K, listener: Listener<BrownoutEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /** True with probability θ: serve this request's optional work (the paper's per-request decision). */
  shouldServeOptional(): boolean {
    const yes = this.#level >= 1 || (this.#level > 0 && this.#random() < this.#level);
    if (yes) this.#served++;
    else this.#skipped++;
    return yes;
  }

  /** Records one measurement of the controlled latency (a response time, a queue wait), ms. Non-finite or negative values are ignored. */
  record(latencyMs: number): void {
    if (this.#closed) return;
    this.#samples.record(latencyMs);
  }

  /**
   * Runs one control step: measures the percentile of the period's samples (or takes
   * `measuredMs` when given), updates the estimate of α and moves θ. Called by the
   * controller's own timer every `periodMs` unless `autoUpdate` is false.
   * @returns θ after the step.
   */
  update(measuredMs?: number): number {
    if (this.#closed) return this.#level;
    const samples = this.#samples.count;
    let t: number;
    if (measuredMs === undefined) {
      if (samples < this.#minSamples && !(samples === 0 && this.#raiseWhenIdle)) {
        this.#samples.reset();
        this.#holds++;
        if (this.#events.has('hold')) this.#events.emit('hold', { name: this.name, level: this.#level, samples });
        return this.#level;
      }
      t = samples === 0 ? 0 : this.#samples.percentile(this.#percentile);
    } else {
      t = finiteNumber('measuredMs', measuredMs, { min: 0 });
    }
    this.#samples.reset();
    const previous = this.#level;
    if (samples > 0 || measuredMs !== undefined) this.#estimate(previous, t);
    const error = this.setpointMs - t;
    const next = previous + ((1 - this.#pole) / this.#alpha) * error;
    this.#level = clamp(next, this.#min, this.#max);
    this.#measured = t;
    this.#updates++;
    if (this.#events.has('update')) {
      this.#events.emit('update', {
        name: this.name,
        level: this.#level,
        previousLevel: previous,
        measuredMs: t,
        setpointMs: this.setpointMs,
        errorMs: error,
        alphaMs: this.#alpha,
        samples,
        saturated: this.#level !== next,
      });
    }
    return this.#level;
  }

  /**
   * One step of recursive least squares with exponential forgetting for `t = α θ`
   * (scalar: gain `K = Pθ ÷ (θ²P + λ)`, `α ← α + K (t − θα)`, `P ← (P − K θ P) ÷ λ`),
   * skipped while θ carries no information, α and P kept within bounds.
   */
  #estimate(theta: number, t: number): void {
    if (theta < MIN_EXCITATION) return;
    const p = this.#covariance;
    const gain = (p * theta) / (theta * theta * p + this.#forgetting);
    this.#alpha = clamp(this.#alpha + gain * (t - theta * this.#alpha), this.#alphaMin, this.#alphaMax);
    this.#covariance = Math.min(MAX_COVARIANCE, (p - gain * theta * p) / this.#forgetting);
  }

  /**
   * Runs `fn` (the Ballast policy contract): `fn` receives the context, with the dimmer's
   * level and whether this call serves its optional work (drawn with probability θ), and
   * the call's duration is recorded as one sample, unless `classify` judges it `ignore`.
   * The controller never rejects a call.
   */
  execute<T>(fn: (context: BrownoutContext) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T> {
    if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('fn', 'a function', fn));
    const scope = CallScope.start(options);
    if (!(scope instanceof CallScope)) return scope;
    const release = (): void => {
      if (scope !== options) scope.release();
    };
    const level = this.#level;
    const context: BrownoutContext = {
      get signal() {
        return scope.signal;
      },
      attempt: scope.attempt,
      level,
      optional: this.shouldServeOptional(),
    };
    const started = this.clock.now();
    const finish = (ok: boolean, value: unknown): void => {
      if (scope.verdict(ok, value) !== 'ignore') this.record(this.clock.now() - started);
    };
    let result: T | PromiseLike<T>;
    try {
      result = fn(context);
    } catch (error) {
      finish(false, error);
      release();
      return Promise.reject(error);
    }
    return Promise.resolve(result).then(
      (value) => {
        finish(true, value);
        release();
        return value;
      },
      (error: unknown) => {
        finish(false, error);
        release();
        throw error;
      },
    );
  }

  /** A snapshot: the dimmer, the last measurement, the estimate, counters. */
  stats(): BrownoutStats {
    return {
      name: this.name,
      level: this.#level,
      setpointMs: this.setpointMs,
      measuredMs: this.#measured,
      alphaMs: this.#alpha,
      updates: this.#updates,
      holds: this.#holds,
      pendingSamples: this.#samples.count,
      optionalServed: this.#served,
      optionalSkipped: this.#skipped,
    };
  }

  /** Stops the control loop (its timer), forgets pending samples and every listener. θ stays where it was. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#samples.reset();
    this.#events.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}
