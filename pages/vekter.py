"""Vekter: tune the seven factor weights and watch the ranking change live; save named profiles."""

import numpy as np
import pandas as pd
import streamlit as st

from tomte import pipeline, profiles
from tomte.scoring import AREA_PER_DWELLING_PRESETS, CURVE_PRESETS, FACTOR_NAMES, FACTORS, score, with_curves
from ui import cached, queries
from ui.state import held_choice, page, run, safe_md, settings, stop_without_lots

s, k = page("Vekter")
stop_without_lots(s, k)

names = profiles.names(s)
c1, c2 = st.columns(2)
profile = held_choice("Profil", names, "vekter_profil", param="profil", where=c1)
area_label = c2.radio("Tomteareal per bolig", [f"{v:.0f} m² ({n})" for n, v in AREA_PER_DWELLING_PRESETS.items()], horizontal=True)
m2 = float(area_label.split()[0])
curves = st.radio("Poengkurver", list(CURVE_PRESETS), horizontal=True, key="vekter_kurver",
                  help="Standard: logaritmiske kurver som skiller 5–1 000 boliger, 2–300 daa og 200 m–10 km til sentrum. "
                       "Som skrevet: masterdokumentets formler (10 boliger og 5 daa gir full score).")
base = profiles.load(s, profile)
# Weights as shares of 100, kept in the URL (?vekter=25,15,20,20,10,10,0) so a reload or a shared link keeps them.
linked = queries.weights_from_url(st.query_params.get("vekter"), FACTORS)
if linked and st.session_state.get("vekter_linked") != st.query_params.get("vekter"):
    for f in FACTORS:
        st.session_state[f"w_{profile}_{f}"] = linked[f]
st.caption("Vekt per faktor i prosent av totalpoengene; summerer de ikke til 100, skaleres de dit.")
cols = st.columns(len(FACTORS))
weights = {f: float(cols[i].slider(f"{FACTOR_NAMES[f]} (%)", 0, 100, int(round(base.get(f, 0))), key=f"w_{profile}_{f}"))
           for i, f in enumerate(FACTORS)}
st.query_params["vekter"] = st.session_state["vekter_linked"] = ",".join(f"{weights[f]:.0f}" for f in FACTORS)
total_weight = sum(weights.values())
if total_weight and abs(total_weight - 100) > 0.5:
    st.caption("Vektene summerer til " + queries.tall(total_weight) + " %; i poengene teller de som " + ", ".join(
        f"{FACTOR_NAMES[f].lower()} {queries.tall(100 * weights[f] / total_weight, 1)} %" for f in FACTORS if weights[f]) + ".")
stored = queries.stored_weights(s, k.kommunenummer)
if stored:
    st.caption("Lagret på kommunens tomter nå (siste «Bruk»): " + ", ".join(
        f"{FACTOR_NAMES.get(f, f).lower()} {queries.tall(v)}" for f, v in stored.items()) + ".")

table = cached.factor_table(str(settings().db_path), k.kommunenummer, m2, cached.data_version(k.kommunenummer), curves)
if table is None:
    st.info("Ingen tomter med poeng ennå; kjør analysen under «Kommuner».")
    st.stop()
totals, tiers, _ = score(table, weights)
ranking = pd.DataFrame({"Tomt": table.index, "Poeng": np.round(totals, 1), "Klasse": tiers}).sort_values("Poeng", ascending=False)
counts = ranking["Klasse"].value_counts().reindex(["A", "B", "C", "D"], fill_value=0)
m = st.columns(4)
for i, tier in enumerate(["A", "B", "C", "D"]):
    m[i].metric(f"Klasse {tier}", int(counts[tier]))
left, right = st.columns([3, 2])
top = ranking.head(10).merge(queries.addresses(s, k.kommunenummer), how="left", left_on="Tomt", right_index=True).fillna({"Adresse": ""})
left.markdown("| | Klasse | Poeng | Adresse | Tomt |\n|---:|:---:|---:|---|---|\n" + "\n".join(
    f"| {i} | {r.Klasse} | {queries.tall(r.Poeng, 1)} | {safe_md(r.Adresse or '–')} | [{r.Tomt}](/kart?kommune={k.kommunenummer}&lot={r.Tomt}) |"
    for i, r in enumerate(top.itertuples(index=False), start=1)))
bins = [f"{b}–{b + 10}" for b in range(0, 100, 10)]
hist = pd.cut(ranking["Poeng"], bins=list(range(0, 101, 10)), labels=bins, include_lowest=True).value_counts().reindex(bins, fill_value=0)
right.bar_chart(pd.DataFrame({"tomter": hist.values}, index=bins))

st.subheader("Hvordan faktorene fordeler seg")
spread = queries.factor_spread(table.values, [FACTOR_NAMES[f] for f in FACTORS])
st.dataframe(spread, hide_index=True, width="stretch")
flat = spread[spread["Skiller"] == "nei"]["Faktor"].tolist()
if flat:
    st.caption("Flat faktor: " + ", ".join(flat) + " gir (nesten) alle tomtene samme verdi her og rangerer dem ikke; "
               "vekten den har, løfter eller senker alle likt.")

with st.form("lagre_profil"):
    name = st.text_input("Lagre vektene som profil", value="" if profile in AREA_PER_DWELLING_PRESETS else profile)
    if st.form_submit_button("Lagre profil") and run(lambda: profiles.save(s, name, weights), "Lagring"):
        st.success(f"Profilen «{name}» er lagret.")
if st.button("Bruk vektene på kommunens tomter (lagres)"):
    from dataclasses import replace

    scoring = with_curves(replace(settings().scoring, weights=weights, m2_per_dwelling=m2), curves)
    n = run(lambda: pipeline.score_kommune(s, k.kommunenummer, scoring), "Poengberegningen")
    if n is not None:
        st.success(f"{n} tomter har fått nye poeng.")
