"""The 38 activities of the procedure, as data: the one definition the engine runs and the flowchart draws."""

from __future__ import annotations

from procedure.model import (
    END,
    Deliverable as D,
    Guard,
    Output,
    OutputKind as O,
    Phase,
    Procedure,
    Route,
    Step,
    StepKind as K,
)

COORD = "COORDINATOR"
PRESS = "PRESS"
COMMS = "COMMS"
TEAM = "OCOIM_TEAM"
DESIGNER = "DESIGNER"
HEAD = "OCOIM_HEAD"
ANALYST = "ADMIN_ANALYST"
DIRECTOR = "DIRECTOR"
REQUESTER = "REQUESTER"
AREA = "REQUESTING_AREA"
INVOLVED = "INVOLVED_AREAS"

EMAIL = "Correo electrónico"
AGENDA_EMAIL = "Correo electrónico (agenda)"


def go(to: str, field: str | None = None, equals: object = None) -> Route:
    return Route(to, Guard(field, equals) if field else None)


def approved(to: str) -> Route:
    return go(to, "verdict", "approved")


def changes(to: str) -> Route:
    return go(to, "verdict", "changes")


STEPS: tuple[Step, ...] = (
    # ── Fase de Preproducción ──────────────────────────────────────────────────────────────
    Step(
        "PRE-01", "Comprender el requerimiento de la pieza audiovisual", Phase.PRE, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (AREA, INVOLVED)),
        (go("PRE-02", "piece_type", "A"), go("PRE-06", "piece_type", "B")),
        description="Lleva a cabo reuniones para comprender la idea y/o necesidades del área usuaria "
        "respecto al requerimiento de la pieza audiovisual. De ser necesario, puede contar con el "
        "soporte de servicios de terceros.",
        decision="¿Qué tipo de pieza audiovisual es?",
    ),
    Step(
        "PRE-02", "Elaborar una propuesta de guion", Phase.PRE, K.TASK, (PRESS, COMMS),
        Output(O.DOCUMENT, "Propuesta de guion", (COMMS,)),
        (go("PRE-03"),),
        description="Para el caso de proyectos de APP y PA, indicar referencias (especificaciones o "
        "características de la imagen esperada) para transmitir la información técnica o particular "
        "del proyecto, a fin de que el Diseñador Gráfico (Ilustrador) pueda ilustrar adecuadamente.",
        internal_audience_role=COMMS,
        deliverables=(D.SCRIPT,),
    ),
    Step(
        "PRE-03", "Realizar aportes en aspectos comunicacionales o publicitarios a la propuesta del guion",
        Phase.PRE, K.TASK, (COMMS,),
        Output(O.DOCUMENT, "Propuesta de guion", (DESIGNER,)),
        (go("PRE-04"),),
        description="En caso reciba el encargo del requerimiento de video animado, elabora el guion.",
        deliverables=(D.SCRIPT,),
    ),
    Step(
        "PRE-04", "Elaborar el storyboard para videos animados", Phase.PRE, K.TASK, (DESIGNER,),
        Output(O.DOCUMENT, "Storyboard", (PRESS,)),
        (go("PRE-05"),),
        description="Toma en cuenta la línea gráfica institucional.",
        deliverables=(D.STORYBOARD,),
    ),
    Step(
        "PRE-05", "Convocar a los involucrados para la revisión del guion y el storyboard", Phase.PRE,
        K.MEETING, (PRESS,),
        Output(O.MEETING, AGENDA_EMAIL, (TEAM, AREA, INVOLVED)),
        (go("PRE-10"),),
        description="Los involucrados son los servidores del área usuaria; y en caso el área usuaria "
        "(DPP y DEP) cuente con un proveedor de producción de videos como parte del servicio de "
        "consultoría integral, los involucra en la revisión.",
    ),
    Step(
        "PRE-06", "Recabar referencias de videos existentes, insumos informativos y material disponible",
        Phase.PRE, K.TASK, (COMMS,),
        Output(O.DOCUMENT, "Referencias de videos existentes y material disponible", (COORD, PRESS)),
        (go("PRE-07", "investment_project", True), go("PRE-08", "investment_project", False)),
        description="Con base a las necesidades del requerimiento, recaba las referencias de videos "
        "existentes, insumos informativos, tomas fotográficas u otro material disponible en el archivo "
        "de editables de OCOIM y en la plataforma «Shutterstock». Considera también los gastos.",
        deliverables=(D.REFERENCES,),
        decision="¿La pieza audiovisual está referida a proyectos de APP o PA?",
    ),
    Step(
        "PRE-07", "Brindar los insumos informativos y/o comunicacionales sobre los proyectos a su cargo",
        Phase.PRE, K.TASK, (PRESS,),
        Output(O.DOCUMENT, "Insumos informativos y/o comunicacionales", (COMMS,)),
        (go("PRE-08"),),
        description="Tales como situación del proyecto, contexto, temas delicados.",
        deliverables=(D.INFO_INPUTS,),
    ),
    Step(
        "PRE-08", "Elaborar el guion y el storyboard", Phase.PRE, K.TASK, (COMMS,),
        Output(O.DOCUMENT, "Guion y storyboard", (COORD,)),
        (go("PRE-09"),),
        deliverables=(D.SCRIPT, D.STORYBOARD),
    ),
    Step(
        "PRE-09", "Convocar a revisión del guion y el storyboard", Phase.PRE, K.MEETING, (COORD,),
        Output(O.MEETING, AGENDA_EMAIL, (TEAM,)),
        (go("PRE-10"),),
    ),
    Step(
        "PRE-10", "Revisar el guion y el storyboard", Phase.PRE, K.REVIEW, (TEAM,),
        Output(O.EMAIL, EMAIL, (PRESS, COMMS)),
        (approved("PRE-12"), changes("PRE-11")),
        decision="¿Es conforme?",
    ),
    Step(
        "PRE-11", "Realizar ajustes al guion y storyboard", Phase.PRE, K.TASK, (PRESS, COMMS),
        Output(O.DOCUMENT, "Guion y storyboard", (COORD, TEAM)),
        (go("PRE-10"),),
        description="Realiza los ajustes, luego de la revisión del equipo de especialistas de OCOIM.",
        internal_audience_role=COMMS,
        deliverables=(D.SCRIPT, D.STORYBOARD),
        deliverable_rule="any",
    ),
    Step(
        "PRE-12", "Dar conformidad al guion y el storyboard", Phase.PRE, K.CONFORMITY, (TEAM,),
        Output(O.DOCUMENT, "Guion y storyboard, con la conformidad de OCOIM", (COORD, HEAD)),
        (go("PRE-13"),),
    ),
    Step(
        "PRE-13", "Presentar la propuesta del guion y storyboard al área usuaria", Phase.PRE, K.MEETING,
        (COORD,),
        Output(O.MEETING, EMAIL, (AREA, INVOLVED)),
        (go("PRE-14"),),
        description="Solicita al área usuaria una reunión para exponer o remite por correo electrónico. "
        "El área usuaria puede ser DE, DSI, SASA, según el tema del video: videos institucionales "
        "(DE), promocionales (DSI), sociales (SASA).",
    ),
    Step(
        "PRE-14", "Revisar el guion y storyboard", Phase.PRE, K.REVIEW, (DIRECTOR,),
        Output(O.EMAIL, EMAIL, (PRESS, COMMS, DIRECTOR)),
        (approved("PRE-16"), changes("PRE-15")),
        observers=(REQUESTER,),
        decision="¿Es conforme?",
    ),
    Step(
        "PRE-15", "Realizar ajustes al guion y/o storyboard", Phase.PRE, K.TASK, (PRESS, COMMS),
        Output(O.DOCUMENT, "Propuesta de guion y storyboard", (DIRECTOR,)),
        (go("PRE-14"),),
        description="Realiza los ajustes luego de la revisión del Área Usuaria y áreas involucradas.",
        internal_audience_role=COMMS,
        deliverables=(D.SCRIPT, D.STORYBOARD),
        deliverable_rule="any",
    ),
    Step(
        "PRE-16", "Dar conformidad al guion y/o storyboard", Phase.PRE, K.CONFORMITY, (DIRECTOR,),
        Output(O.DOCUMENT, "Propuesta de guion y storyboard con la conformidad Área Usuaria", (HEAD, COORD)),
        (go("PRE-17", "outside_producer", True), go("PRO-01", "outside_producer", False)),
        decision="¿Se requiere contratar servicios de terceros (productora)?",
    ),
    Step(
        "PRE-17",
        "Solicitar contratación de servicios de terceros (productora) para la animación, grabación o edición",
        Phase.PRE, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (COORD, ANALYST)),
        (go("PRO-01"),),
        description="Interactúa con el proceso de «Contratación de bienes y servicios».",
    ),
    # ── Fase de Producción ─────────────────────────────────────────────────────────────────
    Step(
        "PRO-01", "Definir plazos para la producción de las piezas audiovisuales requeridas", Phase.PRO,
        K.TASK, (COORD,),
        Output(O.EMAIL, "Correo electrónico y/o cronograma de actividades", (AREA, INVOLVED)),
        (go("PRO-02"),),
        description="Considerando el tiempo de entrega requerido por el área usuaria, el tipo de video, "
        "la disponibilidad de material y la capacidad operativa, define el plazo de producción. "
        "Comunica el plazo de entrega definido a todos los involucrados.",
    ),
    Step(
        "PRO-02", "Agendar la solicitud de piezas audiovisuales", Phase.PRO, K.TASK, (COORD,),
        Output(O.AGENDA, "Cuaderno / Agenda física o virtual / Cuadro en Excel", (COORD,)),
        (go("PRO-03", "needs_animation", True), go("PRO-04", "needs_filming", True), go("PRO-06")),
        decision="¿Qué servicio requiere el video?",
    ),
    Step(
        "PRO-03", "Supervisar la animación del video", Phase.PRO, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (HEAD,)),
        (go("PRO-04", "needs_filming", True), go("PRO-06")),
        description="Para ello, puede contar con los servicios de terceros para el soporte en supervisión "
        "de la animación de videos.",
    ),
    Step(
        "PRO-04", "Planificar y coordinar la grabación", Phase.PRO, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (COORD,)),
        (go("PRO-05"),),
        description="Planifica y coordina la disponibilidad de equipos y salas de grabación.",
    ),
    Step(
        "PRO-05", "Supervisar la grabación del video", Phase.PRO, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (HEAD,)),
        (go("PRO-06"),),
    ),
    Step(
        "PRO-06", "Supervisar la edición de videos", Phase.PRO, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (HEAD, PRESS, COMMS)),
        (go("PRO-07"),),
        description="Con el soporte de un editor / productor de video, realiza la edición (incluido "
        "audio), según el «Manual de Identidad Institucional». Coloca una locución referencial y carga "
        "la pieza editada a «Stream» para su revisión.",
        deliverables=(D.PRELIMINARY_VERSION,),
    ),
    Step(
        "PRO-07", "Revisar la versión preliminar del video o pieza audiovisual", Phase.PRO, K.REVIEW,
        (TEAM,),
        Output(O.EMAIL, EMAIL, (COORD,)),
        (approved("PRO-09"), changes("PRO-08")),
        decision="¿Es conforme?",
    ),
    Step(
        "PRO-08", "Coordinar los ajustes a la versión preliminar del video o pieza audiovisual", Phase.PRO,
        K.TASK, (COORD,),
        Output(O.EMAIL, "Correo electrónico y la versión preliminar del video", (TEAM,)),
        (go("PRO-07"),),
        deliverables=(D.PRELIMINARY_VERSION,),
    ),
    Step(
        "PRO-09", "Dar conformidad a la versión preliminar del video o pieza audiovisual", Phase.PRO,
        K.CONFORMITY, (TEAM,),
        Output(O.EMAIL, "Correo electrónico y la versión preliminar del video con la conformidad del "
               "equipo de Especialistas de OCOIM", (HEAD,)),
        (go("PRO-10"),),
    ),
    Step(
        "PRO-10", "Presentar la primera versión del video o pieza audiovisual al área usuaria", Phase.PRO,
        K.MEETING, (COORD,),
        Output(O.MEETING, EMAIL, (AREA, INVOLVED)),
        (go("PRO-11"),),
        description="De acuerdo a lo coordinado con el Área Usuaria, puede convocar a una reunión o "
        "remitir por correo electrónico.",
        deliverables=(D.FIRST_VERSION,),
    ),
    Step(
        "PRO-11", "Revisar la primera versión del video o pieza audiovisual", Phase.PRO, K.REVIEW,
        (DIRECTOR,),
        Output(O.EMAIL, EMAIL, (COORD,)),
        (approved("PRO-13"), changes("PRO-12")),
        observers=(REQUESTER,),
        decision="¿Es conforme?",
    ),
    Step(
        "PRO-12", "Realizar o coordinar ajustes al video o pieza audiovisual", Phase.PRO, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (AREA,)),
        (go("PRO-11"),),
        deliverables=(D.FIRST_VERSION,),
    ),
    Step(
        "PRO-13", "Dar conformidad al video o pieza audiovisual", Phase.PRO, K.CONFORMITY, (DIRECTOR,),
        Output(O.EMAIL, "Correo electrónico y video con la conformidad del Área Usuaria", (COORD, INVOLVED)),
        (go("POS-01"),),
    ),
    # ── Fase de Postproducción ─────────────────────────────────────────────────────────────
    Step(
        "POS-01", "Solicitar la elaboración piezas gráficas para el video o pieza audiovisual", Phase.POS,
        K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (DESIGNER,)),
        (go("POS-02"),),
    ),
    Step(
        "POS-02", "Brindar piezas gráficas solicitadas", Phase.POS, K.TASK, (DESIGNER,),
        Output(O.EMAIL, EMAIL, (COORD,)),
        (go("POS-03"),),
        deliverables=(D.GRAPHIC_PIECES,),
    ),
    Step(
        "POS-03", "Coordinar la colocación del fondo musical y locución al video o pieza audiovisual",
        Phase.POS, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (PRESS, COMMS, AREA)),
        (go("POS-04"),),
        description="Con el soporte de un editor de video, realiza la musicalización. Utiliza el servicio "
        "de bolsa de locución, con el apoyo de la Analista Administrativa.",
        deliverables=(D.FINAL_VERSION,),
    ),
    Step(
        "POS-04", "Revisar la versión final del video o pieza audiovisual", Phase.POS, K.REVIEW,
        (DIRECTOR,),
        Output(O.EMAIL, EMAIL, (COORD,)),
        (approved("POS-06"), changes("POS-05")),
        observers=(REQUESTER,),
        decision="¿Es conforme?",
    ),
    Step(
        # The source says "Ir a la Actividad 05" here: a typo for POS-04 (DOMAIN.md, res. 6).
        "POS-05", "Coordinar ajustes menores al video o pieza audiovisual", Phase.POS, K.TASK, (COORD,),
        Output(O.EMAIL, EMAIL, (AREA,)),
        (go("POS-04"),),
        deliverables=(D.FINAL_VERSION,),
    ),
    Step(
        "POS-06", "Dar conformidad a la versión final del video", Phase.POS, K.CONFORMITY, (DIRECTOR,),
        Output(O.EMAIL, "Correo electrónico y video con la conformidad del Área Usuaria", (COORD, INVOLVED)),
        (go("POS-07"),),
    ),
    Step(
        "POS-07", "Archivar las piezas audiovisuales y los editables", Phase.POS, K.TASK, (COORD,),
        Output(O.ARCHIVE, "Archivo en carpetas", (HEAD,)),
        (go("POS-08"),),
        description="Archiva la pieza audiovisual y los editables en una carpeta por año, mes y nombre "
        "del video o proyecto.",
        deliverables=(D.ARCHIVE_PATH,),
    ),
    Step(
        "POS-08", "Entregar o coordinar la difusión de la versión final de la pieza audiovisual", Phase.POS,
        K.TASK, (COORD,),
        Output(O.DISTRIBUTION, "Piezas audiovisuales difundidas", (AREA, INVOLVED)),
        (go(END),),
        description="Entrega al Área Usuaria o coordina la difusión en las redes sociales, intranet, "
        "portal institucional, red social interna o correo electrónico institucional, según lo acordado.",
        deliverables=(D.DISTRIBUTION_CHANNELS,),
    ),
)

# Section 7.4: an area that contracted its own producer sends the piece to OCOIM for technical review and
# conformity (DOMAIN.md res. 12). The procedure numbers no activities here; TER- ids are ours.
THIRD_PARTY_STEPS: tuple[Step, ...] = (
    Step(
        "TER-01", "Revisar la pieza audiovisual elaborada por terceros", Phase.TER, K.REVIEW, (COORD,),
        Output(O.EMAIL, EMAIL, (AREA,)),
        (approved("TER-03"), changes("TER-02")),
        description="Las áreas usuarias que contratan servicios de terceros remiten a OCOIM las piezas "
        "audiovisuales elaboradas para la revisión y/o opinión técnica y conformidad correspondiente.",
        decision="¿Es conforme?",
    ),
    Step(
        "TER-02", "Ajustar la pieza audiovisual según las observaciones de OCOIM", Phase.TER, K.TASK,
        (REQUESTER,),
        Output(O.DOCUMENT, "Pieza audiovisual ajustada", (COORD,)),
        (go("TER-01"),),
        description="El área usuaria coordina con su proveedor los ajustes observados por OCOIM.",
        deliverables=(D.FINAL_VERSION,),
    ),
    Step(
        "TER-03", "Dar conformidad a la pieza audiovisual elaborada por terceros", Phase.TER, K.CONFORMITY,
        (COORD,),
        Output(O.EMAIL, "Correo electrónico con la conformidad de OCOIM", (AREA, HEAD)),
        (go(END),),
    ),
)

PROCEDURE = Procedure(steps=STEPS + THIRD_PARTY_STEPS, start="PRE-01", entries=("TER-01",))
